// Command argocd-health evaluates an Argo CD resource health script the way Argo CD does: with gopher-lua
// (the Lua 5.1 interpreter Argo CD embeds), the object as the global `obj`, and the returned table's
// `status` and `message` as the result. It reads the object as JSON on stdin and prints the result as JSON.
//
//	argocd-health SCRIPT.lua < object.json
package main

import (
	"encoding/json"
	"fmt"
	"os"

	lua "github.com/yuin/gopher-lua"
)

// toLua converts decoded JSON into Lua values: objects and arrays become tables (arrays 1-based).
func toLua(L *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []interface{}:
		table := L.NewTable()
		for _, item := range v {
			table.Append(toLua(L, item))
		}
		return table
	case map[string]interface{}:
		table := L.NewTable()
		for key, item := range v {
			table.RawSetString(key, toLua(L, item))
		}
		return table
	default:
		return lua.LNil
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health SCRIPT.lua < object.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var object interface{}
	if err := json.NewDecoder(os.Stdin).Decode(&object); err != nil {
		fmt.Fprintln(os.Stderr, "the object is not JSON:", err)
		os.Exit(1)
	}
	// Only the libraries Argo CD opens for health scripts.
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	L.SetGlobal("obj", toLua(L, object))
	if err := L.DoString(string(script)); err != nil {
		fmt.Fprintln(os.Stderr, "the script failed:", err)
		os.Exit(1)
	}
	result, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		fmt.Fprintln(os.Stderr, "the script did not return a table")
		os.Exit(1)
	}
	out, _ := json.Marshal(map[string]string{
		"status":  result.RawGetString("status").String(),
		"message": result.RawGetString("message").String(),
	})
	fmt.Println(string(out))
}
