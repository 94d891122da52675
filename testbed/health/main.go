// Command health prints, for each Kubernetes object it reads on stdin, the verdicts of
// the two GitOps tools this project documents:
//
//   - kstatus: sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute, the status library
//     Flux's kustomize-controller and helm-controller wait on (Current, InProgress,
//     Failed, Terminating, Unknown);
//   - argocd: the repo's deploy/argocd/<group>/<Kind>/health.lua run the way Argo CD's
//     util/lua package runs a resource.customizations.health script (see lua.go here):
//     gopher-lua (Lua 5.1), the object bound to the global `obj`, the returned table's
//     status/message taken through JSON (Healthy, Progressing, Degraded, Suspended,
//     Missing, Unknown; a script error is Unknown with the error as the message, as
//     gitops-engine reports it).
//
// Input: one JSON value: an array of objects, a kubectl List ({"kind": "List", "items":
// [...]}, any *List kind) or a single object. Output: a JSON array, one entry per object,
// in input order.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// Verdict is one object's line of output.
type Verdict struct {
	Kind           string `json:"kind"`
	Name           string `json:"name"`
	Namespace      string `json:"namespace,omitempty"`
	Kstatus        string `json:"kstatus"`
	KstatusMessage string `json:"kstatusMessage"`
	// Argocd is empty when the repo has no health.lua for the object's group/kind.
	Argocd        string `json:"argocd"`
	ArgocdMessage string `json:"argocdMessage"`
	// ArgocdError is set when the script failed (Argo CD then shows Unknown).
	ArgocdError string `json:"argocdError,omitempty"`
	// Script is the health.lua that ran, relative to --argocd-dir; LuaLibs "sandbox"
	// (Argo CD's default) or "open" (resource.customizations.useOpenLibs.<key>: true).
	Script  string `json:"script,omitempty"`
	LuaLibs string `json:"luaLibs,omitempty"`
}

func main() {
	argocdDir := flag.String("argocd-dir", "", "the directory holding <group>/<Kind>/health.lua and argocd-cm.yaml "+
		"(default: deploy/argocd under the current directory, else under the repo this binary was built into)")
	openLibs := flag.String("open-libs", "auto", "auto: as argocd-cm.yaml's resource.customizations.useOpenLibs.<group>_<Kind> "+
		"says (absent: false, Argo CD's default); true/false: force it for every object")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags] < objects.json\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *openLibs != "auto" && *openLibs != "true" && *openLibs != "false" {
		fmt.Fprintf(os.Stderr, "health: --open-libs must be auto, true or false, not %q\n", *openLibs)
		os.Exit(2)
	}
	dir, err := resolveArgocdDir(*argocdDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "health: %v\n", err)
		os.Exit(2)
	}
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "health: reading stdin: %v\n", err)
		os.Exit(1)
	}
	objects, err := parseObjects(data)
	if err != nil {
		fmt.Fprintf(os.Stderr, "health: %v\n", err)
		os.Exit(1)
	}
	cm, err := loadArgocdCM(filepath.Join(dir, "argocd-cm.yaml"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "health: %v\n", err)
		os.Exit(1)
	}
	out := make([]Verdict, 0, len(objects))
	for _, obj := range objects {
		out = append(out, judge(obj, dir, cm, *openLibs))
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "health: %v\n", err)
		os.Exit(1)
	}
}

func resolveArgocdDir(flagValue string) (string, error) {
	if flagValue != "" {
		if st, err := os.Stat(flagValue); err != nil || !st.IsDir() {
			return "", fmt.Errorf("--argocd-dir %s is not a directory", flagValue)
		}
		return flagValue, nil
	}
	candidates := []string{filepath.Join("deploy", "argocd")}
	if exe, err := os.Executable(); err == nil {
		// .tools/bin/health -> <repo>/deploy/argocd
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "..", "..", "deploy", "argocd"))
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && st.IsDir() {
			return c, nil
		}
	}
	return "", fmt.Errorf("no deploy/argocd found (tried %s); pass --argocd-dir", strings.Join(candidates, ", "))
}

// parseObjects decodes stdin the way the API machinery does (integers become int64,
// other numbers float64), which is what kstatus' NestedInt64 and Argo CD's decodeValue
// see in a live object.
func parseObjects(data []byte) ([]map[string]any, error) {
	var doc any
	if err := utiljson.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("stdin is not JSON: %w", err)
	}
	var items []any
	switch v := doc.(type) {
	case []any:
		items = v
	case map[string]any:
		kind, _ := v["kind"].(string)
		if list, ok := v["items"].([]any); ok && strings.HasSuffix(kind, "List") {
			items = list
		} else {
			items = []any{v}
		}
	default:
		return nil, fmt.Errorf("stdin must hold a JSON array, a List or an object, not %T", doc)
	}
	objects := make([]map[string]any, 0, len(items))
	for i, item := range items {
		obj, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("item %d is a %T, not an object", i, item)
		}
		objects = append(objects, obj)
	}
	return objects, nil
}

func judge(obj map[string]any, dir string, cm argocdCM, openLibsMode string) Verdict {
	u := &unstructured.Unstructured{Object: obj}
	v := Verdict{Kind: u.GetKind(), Name: u.GetName(), Namespace: u.GetNamespace()}

	if res, err := status.Compute(u); err != nil {
		v.Kstatus, v.KstatusMessage = string(status.UnknownStatus), err.Error()
	} else {
		v.Kstatus, v.KstatusMessage = string(res.Status), res.Message
	}

	gvk := u.GroupVersionKind()
	rel := filepath.Join(gvk.Kind, "health.lua")
	key := gvk.Kind // Argo CD's key: "<group>/<Kind>", or the Kind alone for the core group
	if gvk.Group != "" {
		rel = filepath.Join(gvk.Group, gvk.Kind, "health.lua")
		key = gvk.Group + "/" + gvk.Kind
	}
	script, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		if os.IsNotExist(err) {
			v.ArgocdMessage = "no health.lua for " + key
			return v
		}
		v.Argocd, v.ArgocdMessage, v.ArgocdError = "Unknown", err.Error(), err.Error()
		return v
	}
	open := cm.useOpenLibs(key)
	switch openLibsMode {
	case "true":
		open = true
	case "false":
		open = false
	}
	v.Script = rel
	v.LuaLibs = "sandbox"
	if open {
		v.LuaLibs = "open"
	}
	hs, err := ExecuteHealthLua(obj, string(script), open)
	if err != nil {
		// gitops-engine's health.GetResourceHealth: a failing override is Unknown, its message the error.
		v.Argocd, v.ArgocdMessage, v.ArgocdError = "Unknown", err.Error(), err.Error()
		return v
	}
	v.Argocd, v.ArgocdMessage = hs.Status, hs.Message
	return v
}
