package doctest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A block is one fenced code block of a Markdown file.
type block struct {
	file string // relative to the repository root
	line int    // line of the opening fence, from 1
	lang string
	text string
	skip string // the reason given by a doctest:skip marker, if any
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

var skipMarker = regexp.MustCompile(`^<!--\s*doctest:skip\s*(.*?)\s*-->$`)

// root returns the repository root: the directory holding go.mod.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// docFiles returns the Markdown files whose blocks must compile, relative
// to the root.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md", "CONTRIBUTING.md"}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range more {
		rel, _ := filepath.Rel(root, m)
		files = append(files, rel)
	}
	return files
}

// parseBlocks returns the code blocks of a Markdown text: the fenced ones
// (``` or ~~~, three or more, closed by a fence of the same character at
// least as long), whose lang is the first word of the info string in lower
// case with "golang" read as "go", and the indented ones (four spaces or a
// tab after a blank line), with lang "(indented)".
func parseBlocks(file string, src []byte) ([]block, error) {
	var (
		blocks   []block
		cur      *block
		body     strings.Builder
		prev     string // previous non-blank line outside blocks
		fence    string
		blank    = true // the previous line is blank (or the first)
		indented *block
	)
	endIndented := func() {
		if indented != nil {
			indented.text = body.String()
			blocks = append(blocks, *indented)
			indented = nil
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur == nil {
			f := fenceOf(trimmed)
			isIndented := f == "" && (strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t"))
			switch {
			case indented != nil && (isIndented || trimmed == ""):
				body.WriteString(line)
				body.WriteByte('\n')
				continue
			case indented != nil:
				endIndented()
			case isIndented && blank && trimmed != "":
				indented = &block{file: file, line: n, lang: "(indented)"}
				body.Reset()
				body.WriteString(line)
				body.WriteByte('\n')
				continue
			}
			blank = trimmed == ""
			if f != "" {
				fence = f
				info := strings.Fields(strings.TrimPrefix(trimmed, f))
				cur = &block{file: file, line: n}
				if len(info) > 0 {
					cur.lang = strings.ToLower(info[0])
					if cur.lang == "golang" {
						cur.lang = "go"
					}
				}
				if m := skipMarker.FindStringSubmatch(prev); m != nil {
					if m[1] == "" {
						return nil, fmt.Errorf("%s:%d: doctest:skip marker without a reason", file, n)
					}
					cur.skip = m[1]
				}
				body.Reset()
				continue
			}
			if trimmed != "" {
				prev = trimmed
			}
			continue
		}
		if f := fenceOf(trimmed); f != "" && f == trimmed && f[0] == fence[0] && len(f) >= len(fence) {
			cur.text = body.String()
			blocks = append(blocks, *cur)
			cur, prev, blank = nil, "", true
			continue
		}
		body.WriteString(line)
		body.WriteByte('\n')
	}
	endIndented()
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: code block never closed", file, cur.line)
	}
	return blocks, sc.Err()
}

// fenceOf returns the code fence that line (trimmed) starts with: three or
// more backticks or tildes; "" if none.
func fenceOf(line string) string {
	if !strings.HasPrefix(line, "```") && !strings.HasPrefix(line, "~~~") {
		return ""
	}
	n := 0
	for n < len(line) && line[n] == line[0] {
		n++
	}
	return line[:n]
}

// looksLikeGo reports whether the text of a block is Go source: its first
// line that is not blank or a comment is a package clause.
func looksLikeGo(text string) bool {
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		return strings.HasPrefix(line, "package ")
	}
	return false
}

func TestParseBlocks(t *testing.T) {
	src := "text\n```go\npackage main\n```\n<!-- doctest:skip a fragment -->\n\n```go\nx := 1\n```\n```sh\nls\n```\n"
	got, err := parseBlocks("x.md", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d blocks, want 3", len(got))
	}
	want := []block{
		{file: "x.md", line: 2, lang: "go", text: "package main\n"},
		{file: "x.md", line: 7, lang: "go", text: "x := 1\n", skip: "a fragment"},
		{file: "x.md", line: 10, lang: "sh", text: "ls\n"},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("block %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	// Every kind of block the test must see: tildes, longer fences holding
	// shorter ones, "golang" and capitals, an info string after the
	// language, indented code, and Go in a block without a language.
	src = "~~~go\npackage a\n~~~\n````Go\n```\npackage b\n````\n```golang title=x\npackage c\n```\n\n    package d\n\n    func f() {}\nafter\n```\npackage e\n```\n  - item\n\n    ```go\n    package f\n    ```\n"
	got, err = parseBlocks("z.md", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want = []block{
		{file: "z.md", line: 1, lang: "go", text: "package a\n"},
		{file: "z.md", line: 4, lang: "go", text: "```\npackage b\n"},
		{file: "z.md", line: 8, lang: "go", text: "package c\n"},
		{file: "z.md", line: 12, lang: "(indented)", text: "    package d\n\n    func f() {}\n"},
		{file: "z.md", line: 16, lang: "", text: "package e\n"},
		{file: "z.md", line: 21, lang: "go", text: "    package f\n"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d blocks %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("block %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, b := range got[3:5] {
		if !looksLikeGo(b.text) {
			t.Errorf("looksLikeGo(%q) = false, want true", b.text)
		}
	}
	if looksLikeGo("go run ./cmd/eventpipeline demo\n") {
		t.Error("looksLikeGo of a shell command = true, want false")
	}
	if _, err := parseBlocks("y.md", []byte("<!-- doctest:skip -->\n```go\nx\n```\n")); err == nil {
		t.Error("got no error for a skip marker without a reason")
	}
}

// TestGoBlocksCompile writes every Go block of the documentation as a
// package of its own inside this module and runs go vet on them, which
// type-checks them as go build would.
func TestGoBlocksCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the documentation's programs; skipped with -short")
	}
	root := root(t)
	goBin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	// A directory whose name starts with "_" is ignored by ./... patterns,
	// so a concurrent go vet ./... never sees the generated programs.
	tmp, err := os.MkdirTemp(filepath.Join(root, "internal", "doctest"), "_blocks")
	if errors.Is(err, fs.ErrPermission) {
		t.Skipf("the source tree is read-only (as in the module cache): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })

	// A block that imports a module of contrib/ is built in that module,
	// whose go.mod has its dependencies; the others in this one.
	pkgs := map[string][]string{} // module directory, relative to root: packages
	where := map[string]block{}
	dirs := map[string]string{root: tmp} // module directory: directory of its blocks
	count := 0
	for _, file := range docFiles(t, root) {
		src, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		blocks, err := parseBlocks(file, src)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, b := range blocks {
			if b.lang != "go" {
				if looksLikeGo(b.text) {
					t.Errorf("%s: a Go program in a block marked %q is not checked; fence it with ```go", b, b.lang)
				}
				continue
			}
			if b.skip != "" {
				t.Logf("%s: skipped: %s", b, b.skip)
				continue
			}
			if !strings.HasPrefix(strings.TrimSpace(b.text), "package ") {
				t.Errorf("%s: a Go block must be a whole file starting with a package clause, or be marked <!-- doctest:skip REASON -->", b)
				continue
			}
			modDir := root
			if m := contribImport.FindStringSubmatch(b.text); m != nil {
				modDir = filepath.Join(root, "contrib", m[1])
				if _, err := os.Stat(filepath.Join(modDir, "go.mod")); err != nil {
					t.Errorf("%s: imports the module contrib/%s, which is not in the repository", b, m[1])
					continue
				}
				if dirs[modDir] == "" {
					d, err := os.MkdirTemp(modDir, "_doctest_blocks")
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { os.RemoveAll(d) })
					dirs[modDir] = d
				}
			}
			name := strings.NewReplacer("/", "_", ".", "_").Replace(b.file) + fmt.Sprintf("_L%d", b.line)
			dir := filepath.Join(dirs[modDir], name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(b.text), 0o644); err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(modDir, dir)
			pkgs[modDir] = append(pkgs[modDir], "./"+filepath.ToSlash(rel))
			where[name] = b
			count++
		}
	}
	if count == 0 {
		t.Fatal("found no Go blocks to check")
	}
	for modDir, list := range pkgs {
		cmd := exec.Command(goBin, append([]string{"vet"}, list...)...)
		cmd.Dir = modDir
		// The blocks import only the module and its requirements, which go
		// test (or .ci/run) has already downloaded: never reach for the
		// network.
		cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("go vet of the documentation's Go blocks in %s failed: %v\n%s\n(each directory is named after the Markdown file and the line of the block)", modDir, err, out)
		}
	}
	t.Logf("checked %d Go blocks", count)
}

// contribImport finds the import of a module of contrib/ in a Go block.
var contribImport = regexp.MustCompile(`"github.com/eventpipeline/eventpipeline/contrib/([a-z0-9]+)"`)

var (
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	// repoPath matches a path of the repository named in the text, such as
	// examples/telemetry/prometheus_dashboard.json or ./cmd/eventpipeline.
	repoPath = regexp.MustCompile(`(?:^|[\s` + "`" + `"(])(?:\./)?((?:examples|docs|cmd|telemetry|internal|pipeline|contrib|\.ci)/[A-Za-z0-9_./-]*[A-Za-z0-9_])`)
)

// TestLinksResolve checks that every relative link of the documentation,
// and every path of the repository it names, points to a file or directory
// of the repository.
func TestLinksResolve(t *testing.T) {
	root := root(t)
	for _, file := range docFiles(t, root) {
		src, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		for n, line := range strings.Split(string(src), "\n") {
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				target, _, _ = strings.Cut(target, "#")
				path := filepath.Join(root, filepath.Dir(file), filepath.FromSlash(target))
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s:%d: link to %s, which is not in the repository", file, n+1, m[1])
				}
			}
			for _, m := range repoPath.FindAllStringSubmatch(line, -1) {
				if m[1] == "docs/s" { // a unit, documents per second
					continue
				}
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(m[1]))); err != nil {
					t.Errorf("%s:%d: names %s, which is not in the repository", file, n+1, m[1])
				}
			}
		}
	}
}

// TestNoOrigins checks that the documentation speaks of this project: only
// docs/python-names.md names the Python library it started from, and no
// document or package doc refers to files outside the repository.
func TestNoOrigins(t *testing.T) {
	root := root(t)
	files := docFiles(t, root)
	var goFiles []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) && path != root {
			return filepath.SkipDir
		}
		if strings.HasSuffix(d.Name(), ".go") {
			rel, _ := filepath.Rel(root, path)
			goFiles = append(goFiles, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// In documents any mention counts; in Go files (comments, help texts and
	// examples), where "seed" is also a word of hashing and fuzzing, the
	// forms that name the origin do.
	bad := regexp.MustCompile(`(?i)\bseeds?\b|seed's|seeds'|shared/|SPEC\.md|STYLE\.md`)
	badGo := regexp.MustCompile(`(?i)seed's|seeds'|\bthe seeds?\b|shared/|SPEC\.md|STYLE\.md`)
	check := func(file string, bad *regexp.Regexp) {
		src, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Errorf("%s: %v", file, err)
			return
		}
		for n, line := range strings.Split(string(src), "\n") {
			if m := bad.FindString(line); m != "" {
				t.Errorf("%s:%d: %q refers to the project's origins or to files outside the repository: %s", file, n+1, m, strings.TrimSpace(line))
			}
		}
	}
	for _, file := range goFiles {
		if filepath.ToSlash(file) != "internal/doctest/doctest_test.go" {
			check(file, badGo)
		}
	}
	for _, file := range files {
		if filepath.ToSlash(file) == "docs/python-names.md" {
			continue
		}
		check(file, bad)
	}
}

// TestReadmeIsShort keeps README.md a front door: the manual is in the
// package docs and docs/.
func TestReadmeIsShort(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(src, []byte("\n")); n > 220 {
		t.Errorf("README.md has %d lines; keep it under about 200 and move the rest to the package docs or docs/", n)
	}
}
