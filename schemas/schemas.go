// Package schemas embeds the JSON Schemas Hookgate ships, one per sender, and compiles them.
//
// An embedded schema is named by its file name without ".json" (for example "ploomes").
// Every embedded schema is registered under its "$id", so schemas may refer to one another
// ("rubeus.json#/$defs/contato").
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

//go:embed *.json
var files embed.FS

// Names lists the embedded schemas, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Source returns the text of the embedded schema name.
func Source(name string) ([]byte, error) {
	b, err := files.ReadFile(name + ".json")
	if err != nil {
		return nil, fmt.Errorf("no embedded schema %q (have %s)", name, strings.Join(Names(), ", "))
	}
	return b, nil
}

// Title returns the "title" of the embedded schema name, or "".
func Title(name string) string {
	b, err := Source(name)
	if err != nil {
		return ""
	}
	var doc struct {
		Title string `json:"title"`
	}
	_ = json.Unmarshal(b, &doc)
	return doc.Title
}

// IsEmbedded reports whether nameOrPath names an embedded schema rather than a file.
func IsEmbedded(nameOrPath string) bool {
	_, err := files.ReadFile(nameOrPath + ".json")
	return err == nil && !strings.ContainsAny(nameOrPath, `/\`)
}

// newCompiler returns a draft 2020-12 compiler that never fetches a URL, with every schema
// of fsys (its *.json files) registered under its "$id".
func newCompiler(fsys fs.FS) (*jsonschema.Compiler, error) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	// Schemas may only refer to the embedded schemas or to files: never fetch a URL.
	c.LoadURL = func(s string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("schema reference %q: only embedded schemas and local files may be referenced", s)
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("reading the schemas: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", e.Name(), err)
		}
		var doc struct {
			ID string `json:"$id"`
		}
		if err := json.Unmarshal(b, &doc); err != nil || doc.ID == "" {
			return nil, fmt.Errorf("embedded schema %s has no $id", e.Name())
		}
		if err := c.AddResource(doc.ID, bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("embedded schema %s: %w", e.Name(), err)
		}
	}
	return c, nil
}

// Compile compiles the embedded schema called nameOrPath or, when no embedded schema has
// that name, the JSON Schema file at that path. Compile is meant for provisioning: the
// returned schema is safe for concurrent use and is never recompiled per request.
func Compile(nameOrPath string) (*jsonschema.Schema, error) {
	c, err := newCompiler(files)
	if err != nil {
		return nil, err
	}
	if IsEmbedded(nameOrPath) {
		b, _ := Source(nameOrPath)
		var doc struct {
			ID string `json:"$id"`
		}
		_ = json.Unmarshal(b, &doc)
		s, err := c.Compile(doc.ID)
		if err != nil {
			return nil, fmt.Errorf("compiling embedded schema %q: %w", nameOrPath, err)
		}
		return s, nil
	}
	abs, err := filepath.Abs(nameOrPath)
	if err != nil {
		return nil, fmt.Errorf("schema %q: %w", nameOrPath, err)
	}
	b, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("schema %q is neither an embedded schema (%s) nor a readable file: %w",
			nameOrPath, strings.Join(Names(), ", "), err)
	}
	url := "file://" + filepath.ToSlash(abs)
	if err := c.AddResource(url, bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("schema file %s: %w", abs, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("compiling schema file %s: %w", abs, err)
	}
	return s, nil
}
