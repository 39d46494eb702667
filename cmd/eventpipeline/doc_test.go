package main

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// modulePath is the path of this module, whose packages the command's
// environment variables are looked for in.
const modulePath = "github.com/eventpipeline/eventpipeline"

// packageDoc returns the text of the package doc (doc.go), split into the
// part before the first heading (key "") and one part per "# Heading".
func packageDoc(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	heading := ""
	for line := range strings.SplitSeq(f.Doc.Text(), "\n") {
		if h, ok := strings.CutPrefix(line, "# "); ok {
			heading = h
			continue
		}
		sections[heading] += line + "\n"
	}
	return sections
}

var (
	// helpFlag matches a flag in the output of fs.PrintDefaults.
	helpFlag = regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`)
	// docFlag matches a flag named in the text of a doc.
	docFlag = regexp.MustCompile(`(?:^|[^a-z0-9-])--([a-z][a-z0-9-]*)`)
	// envName matches an environment variable named in a doc.
	envName = regexp.MustCompile(`\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b`)
)

// commandFlags returns the flags of each command: those its --help lists
// (demo and worker print flag.PrintDefaults), and for report, whose help
// is written by hand, those report.go defines.
func commandFlags(t *testing.T) map[string][]string {
	t.Helper()
	flags := map[string][]string{}
	for _, cmd := range []string{"demo", "worker"} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{cmd, "--help"}, &stdout, &stderr); code != exitOK {
			t.Fatalf("%s --help: got exit code %d; stderr:\n%s", cmd, code, stderr.String())
		}
		for _, m := range helpFlag.FindAllStringSubmatch(stdout.String(), -1) {
			flags[cmd] = append(flags[cmd], m[1])
		}
	}
	f, err := parser.ParseFile(token.NewFileSet(), "report.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "fs" {
			return true
		}
		arg := 0
		if strings.HasSuffix(sel.Sel.Name, "Var") {
			arg = 1
		}
		if len(call.Args) > arg {
			if lit, ok := call.Args[arg].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				name, _ := strconv.Unquote(lit.Value)
				flags["report"] = append(flags["report"], name)
			}
		}
		return true
	})
	for _, cmd := range []string{"demo", "worker", "report"} {
		if len(flags[cmd]) < 2 {
			t.Fatalf("found the flags %q of %s; the test no longer finds them", flags[cmd], cmd)
		}
	}
	return flags
}

// TestDocListsEveryFlag checks that the package doc, which go doc shows,
// describes every flag of every command in that command's sections, that
// report's hand-written help lists each of its flags, and that every flag
// the doc names exists.
func TestDocListsEveryFlag(t *testing.T) {
	doc := packageDoc(t)
	flags := commandFlags(t)
	synopsis := func(cmd string) string {
		var lines []string
		for line := range strings.SplitSeq(doc[""], "\n") {
			if strings.Contains(line, "eventpipeline "+cmd+" ") {
				lines = append(lines, line)
			}
		}
		return strings.Join(lines, "\n")
	}
	where := map[string]string{
		"demo":   synopsis("demo") + doc["demo"] + doc["A demo that keeps running"] + doc["Backends"],
		"report": synopsis("report") + doc["report"],
		"worker": synopsis("worker") + doc["worker"],
	}
	known := map[string]bool{"help": true}
	for cmd, names := range flags {
		documented := map[string]bool{}
		for _, m := range docFlag.FindAllStringSubmatch(where[cmd], -1) {
			documented[m[1]] = true
		}
		for _, name := range names {
			known[name] = true
			if !documented[name] {
				t.Errorf("flag --%s of %s is not described in the doc's sections of %s", name, cmd, cmd)
			}
		}
	}
	var help bytes.Buffer
	run(context.Background(), []string{"report", "--help"}, &help, &help)
	for _, name := range flags["report"] {
		if !strings.Contains(help.String(), "--"+name+" ") {
			t.Errorf("flag --%s of report is not in report --help:\n%s", name, help.String())
		}
	}
	for heading, text := range doc {
		for _, m := range docFlag.FindAllStringSubmatch(text, -1) {
			if !known[m[1]] {
				t.Errorf("the doc (section %q) names --%s, which no command has", heading, m[1])
			}
		}
	}
}

// TestDocListsEveryEnvironmentVariable checks that the doc's Environment
// section names every environment variable that the command, or a package
// of this module it uses, reads with os.Getenv (or a getenv function), and
// only those.
func TestDocListsEveryEnvironmentVariable(t *testing.T) {
	read := map[string]string{} // variable: where
	seen := map[string]bool{}
	var visit func(dir string)
	visit = func(dir string) {
		if seen[dir] {
			return
		}
		seen[dir] = true
		fset := token.NewFileSet()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var files []*ast.File // of the package in dir, without its tests
		for _, e := range entries {
			if name := e.Name(); strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
				f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
				if err != nil {
					t.Fatal(err)
				}
				files = append(files, f)
			}
		}
		consts := map[string]string{}
		for _, f := range files {
			for _, d := range f.Decls {
				if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.CONST {
					for _, spec := range gd.Specs {
						vs := spec.(*ast.ValueSpec)
						for i, name := range vs.Names {
							if i < len(vs.Values) {
								if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
									consts[name.Name], _ = strconv.Unquote(lit.Value)
								}
							}
						}
					}
				}
			}
		}
		for _, f := range files {
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if rel, ok := strings.CutPrefix(path, modulePath+"/"); ok {
					visit(filepath.Join("..", "..", filepath.FromSlash(rel)))
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) != 1 {
					return true
				}
				var fn string
				switch f := call.Fun.(type) {
				case *ast.Ident:
					fn = f.Name
				case *ast.SelectorExpr:
					fn = f.Sel.Name
				}
				if fn != "Getenv" && fn != "getenv" && fn != "LookupEnv" {
					return true
				}
				switch a := call.Args[0].(type) {
				case *ast.BasicLit:
					name, _ := strconv.Unquote(a.Value)
					read[name] = fset.Position(a.Pos()).String()
				case *ast.Ident:
					if v, ok := consts[a.Name]; ok {
						read[v] = fset.Position(a.Pos()).String()
					}
				}
				return true
			})
		}
	}
	visit(".")
	if len(read) < 5 {
		t.Fatalf("found only the variables %v; the test no longer finds them", read)
	}
	doc := packageDoc(t)["Environment"]
	documented := map[string]bool{}
	for _, name := range envName.FindAllString(doc, -1) {
		documented[name] = true
		if read[name] == "" {
			t.Errorf("the doc's Environment section names %s, which nothing reads", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(read)) {
		if !documented[name] {
			t.Errorf("%s (read at %s) is not in the doc's Environment section", name, read[name])
		}
	}
}
