package main

// Argo CD's Lua health evaluation (argo-cd util/lua: VM.runLua and ExecuteHealthLua),
// reproduced on the same engine (github.com/yuin/gopher-lua, Lua 5.1) and the same JSON
// bridge (layeh.com/gopher-json, the commit Argo CD pins) without importing Argo CD:
//
//   - lua.NewState(lua.Options{SkipOpenLibs: !useOpenLibs}): a script in argocd-cm gets
//     NO standard library unless resource.customizations.useOpenLibs.<group>_<Kind> is
//     true. With it, gopher-lua opens everything (string, math, io, os, debug, channel,
//     coroutine, ...);
//   - either way, then: package, base, table, and Argo CD's "safe os" (time and date
//     only). Argo CD's OpenSafeOs registers those two under the module name of the table
//     library, which gopher-lua's RegisterModule leaves as it is (the module exists): no
//     global `os`, no table.time; `require("os")` gives them (a preloaded module). No
//     `string`, no `math` in the sandbox: string.format(...) there is "attempt to index a
//     non-table object(nil) with key 'format'";
//   - a 1 s context deadline on the state;
//   - `obj` is a global table made from the object as the API machinery decodes it
//     (int64/float64/bool/string, nested maps and slices; json.Number as a string), the
//     way decodeValue does;
//   - the script runs with DoString; the value on top of the stack must be a table,
//     which goes through luajson.Encode and json.Unmarshal into {status, message}; an
//     unknown status is Unknown, "Lua returned an invalid health status".

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
)

// HealthStatus is gitops-engine's health.HealthStatus as JSON.
type HealthStatus struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

var validHealth = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

func newArgoState(useOpenLibs bool) *lua.LState {
	l := lua.NewState(lua.Options{SkipOpenLibs: !useOpenLibs})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true},
			lua.LString(lib.name)); err != nil {
			panic(err)
		}
	}
	l.PreloadModule(lua.OsLibName, safeOsLoader)
	return l
}

// ExecuteHealthLua runs a health script over obj as Argo CD's controller does.
func ExecuteHealthLua(obj map[string]any, script string, useOpenLibs bool) (*HealthStatus, error) {
	l := newArgoState(useOpenLibs)
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	ret := l.Get(-1)
	if ret.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", ret.Type().String())
	}
	raw, err := luajson.Encode(ret)
	if err != nil {
		return nil, err
	}
	hs := &HealthStatus{}
	if err := json.Unmarshal(raw, hs); err != nil {
		return nil, err
	}
	if !validHealth[hs.Status] {
		return &HealthStatus{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return hs, nil
}

func decodeValue(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}

// --- Argo CD's "safe os": time() and date() only ---------------------------------------

var safeOsFuncs = map[string]lua.LGFunction{"time": osTime, "date": osDate}

// openSafeOs is opened under the os library's name but, as in Argo CD, registers its
// functions as the module named after the table library, which already exists (OpenTable
// ran first) and so is returned untouched.
func openSafeOs(l *lua.LState) int {
	l.Push(l.RegisterModule(lua.TabLibName, safeOsFuncs))
	return 1
}

func safeOsLoader(l *lua.LState) int {
	l.Push(l.SetFuncs(l.NewTable(), safeOsFuncs))
	return 1
}

func intField(t *lua.LTable, key string, def int) int {
	if n, ok := t.RawGetString(key).(lua.LNumber); ok {
		return int(n)
	}
	return def
}

func osTime(l *lua.LState) int {
	if l.GetTop() == 0 {
		l.Push(lua.LNumber(time.Now().Unix()))
		return 1
	}
	t := l.CheckTable(1)
	when := time.Date(intField(t, "year", -1), time.Month(intField(t, "month", -1)), intField(t, "day", -1),
		intField(t, "hour", 12), intField(t, "min", 0), intField(t, "sec", 0), 0, time.Local)
	l.Push(lua.LNumber(when.Unix()))
	return 1
}

var strftimeLayouts = map[byte]string{
	'a': "Mon", 'A': "Monday", 'b': "Jan", 'B': "January", 'c': "02 Jan 06 15:04 MST", 'd': "02",
	'F': "2006-01-02", 'H': "15", 'I': "03", 'm': "01", 'M': "04", 'p': "PM", 'S': "05",
	'x': "01/02/06", 'X': "15:04:05", 'y': "06", 'Y': "2006", 'z': "-0700", 'Z': "MST",
}

func osDate(l *lua.LState) int {
	t := time.Now()
	format := "%c"
	if l.GetTop() >= 1 {
		format = l.CheckString(1)
		if strings.HasPrefix(format, "!") {
			t = t.UTC()
			format = strings.TrimLeft(format, "!")
		}
		if l.GetTop() >= 2 {
			t = time.Unix(l.CheckInt64(2), 0)
		}
		if strings.HasPrefix(format, "*t") {
			r := l.NewTable()
			for k, n := range map[string]int{"year": t.Year(), "month": int(t.Month()), "day": t.Day(),
				"hour": t.Hour(), "min": t.Minute(), "sec": t.Second(), "wday": int(t.Weekday()) + 1, "yday": 0} {
				r.RawSetString(k, lua.LNumber(n))
			}
			r.RawSetString("isdst", lua.LFalse)
			l.Push(r)
			return 1
		}
	}
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i == len(format)-1 {
			b.WriteByte(c)
			continue
		}
		i++
		switch f := format[i]; {
		case f == '%':
			b.WriteByte('%')
		case f == 'w':
			fmt.Fprint(&b, int(t.Weekday()))
		case strftimeLayouts[f] != "":
			b.WriteString(t.Format(strftimeLayouts[f]))
		default:
			b.WriteByte('%')
			b.WriteByte(f)
		}
	}
	l.Push(lua.LString(b.String()))
	return 1
}
