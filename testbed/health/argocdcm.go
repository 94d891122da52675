package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// argocdCM is what argocd-cm.yaml says about Lua libraries: per "<group>/<Kind>" key,
// whether resource.customizations.useOpenLibs is on. Argo CD reads both the split keys
// (resource.customizations.useOpenLibs.<group>_<Kind>: "true") and the older single
// resource.customizations blob (<group>/<Kind>: {useOpenLibs: true}).
type argocdCM map[string]bool

func (cm argocdCM) useOpenLibs(key string) bool { return cm[key] }

func loadArgocdCM(path string) (argocdCM, error) {
	cm := argocdCM{}
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return cm, nil // no ConfigMap beside the scripts: Argo CD's defaults
	}
	if err != nil {
		return nil, err
	}
	var doc struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	const split = "resource.customizations.useOpenLibs."
	for k, v := range doc.Data {
		if !strings.HasPrefix(k, split) {
			continue
		}
		on, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, k, err)
		}
		// <group>_<Kind>: the first underscore stands for the slash (Kinds have none).
		cm[strings.Replace(strings.TrimPrefix(k, split), "_", "/", 1)] = on
	}
	if blob, ok := doc.Data["resource.customizations"]; ok {
		var old map[string]struct {
			UseOpenLibs bool `json:"useOpenLibs"`
		}
		if err := yaml.Unmarshal([]byte(blob), &old); err != nil {
			return nil, fmt.Errorf("%s: resource.customizations: %w", path, err)
		}
		for k, v := range old {
			if _, set := cm[k]; !set {
				cm[k] = v.UseOpenLibs
			}
		}
	}
	return cm, nil
}
