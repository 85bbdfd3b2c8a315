package layout

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// maxReadmeLines bounds the README: it is the front door, and the reference lives in docs/.
const maxReadmeLines = 250

// The README stays a front door, and every relative link and #anchor of the README and the
// docs/ pages resolves: to a file that exists and, for an anchor into a markdown page, to
// one of its headings (as GitHub names them).
func TestDocsLinks(t *testing.T) {
	pages, err := docPages("../..")
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 2 {
		t.Fatalf("found %d pages (README.md and docs/*.md): wrong directory?", len(pages))
	}
	for _, p := range checkDocs("../..", pages) {
		t.Error(p)
	}
}

// The check itself, on pages written to break it: each kind of breakage is reported, and
// what is valid is not.
func TestDocsLinksCatchesBreakage(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", "# Title\n\n"+strings.Repeat("line\n", maxReadmeLines)+
		"[ok](docs/a.md) [ok](docs/a.md#the-webhook_feed-directive) [ok](#title) [ok](https://example.com/x.md)\n"+
		"[missing file](docs/nope.md) [missing anchor](docs/a.md#nope) [self anchor](#nope)\n"+
		"`[in code](docs/nope.md)`\n")
	write("docs/a.md", "# A\n\n## The `webhook_feed` directive\n\n## Don't: stop, it's **bold**\n\n## Twice\n\n## Twice\n\n"+
		"```sh\n# not a heading\n[not a link](gone.md)\n```\n\n"+
		"[ok](../README.md#title) [ok](#dont-stop-its-bold) [ok](#twice-1) [ok](a.md) ![ok](img.png)\n"+
		"[fenced heading](#not-a-heading) ![missing](gone.png) [up](../missing/)\n")
	write("docs/img.png", "")
	pages, err := docPages(root)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(checkDocs(root, pages), "\n")
	for _, want := range []string{
		"README.md has 255 lines",
		`README.md:254: "docs/nope.md": no such file`,
		`README.md:254: "docs/a.md#nope": no heading "nope"`,
		`README.md:254: "#nope": no heading "nope"`,
		`docs/a.md:17: "#not-a-heading": no heading "not-a-heading"`,
		`docs/a.md:17: "gone.png": no such file`,
		`docs/a.md:17: "../missing/": no such file`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the check did not report %s; it reported:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 7 {
		t.Errorf("the check reported %d problems, want 7:\n%s", n, got)
	}
}

// docPages lists README.md and docs/*.md under root, relative to it.
func docPages(root string) ([]string, error) {
	pages := []string{"README.md"}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, fmt.Errorf("list docs: %w", err)
	}
	for _, p := range more {
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return nil, fmt.Errorf("docs page %s: %w", p, err)
		}
		pages = append(pages, filepath.ToSlash(rel))
	}
	return pages, nil
}

var (
	fence      = regexp.MustCompile("^\\s*(```|~~~)")
	headingRe  = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	codeSpan   = regexp.MustCompile("`+[^`]*`+")
	linkRe     = regexp.MustCompile(`!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	schemeRe   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
	emphasisRe = regexp.MustCompile(`\*\*|\*`)
	inlineLink = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
)

// checkDocs reports every README that is too long, and every relative link or anchor of
// pages (relative to root) that does not resolve.
func checkDocs(root string, pages []string) []string {
	var problems []string
	anchors := map[string]map[string]bool{} // page (slash path from root) → its heading slugs
	headingsOf := func(page string) (map[string]bool, error) {
		if a, ok := anchors[page]; ok {
			return a, nil
		}
		text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(page)))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", page, err)
		}
		a := headingSlugs(string(text))
		anchors[page] = a
		return a, nil
	}
	for _, page := range pages {
		raw, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(page)))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", page, err))
			continue
		}
		text := string(raw)
		if page == "README.md" {
			if n := strings.Count(strings.TrimRight(text, "\n"), "\n") + 1; n > maxReadmeLines {
				problems = append(problems, fmt.Sprintf("README.md has %d lines: at most %d (move the reference to docs/)", n, maxReadmeLines))
			}
		}
		inFence := false
		for i, line := range strings.Split(text, "\n") {
			if fence.MatchString(line) {
				inFence = !inFence
				continue
			}
			if inFence {
				continue
			}
			for _, m := range linkRe.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
				target := m[1]
				if schemeRe.MatchString(target) || strings.HasPrefix(target, "//") {
					continue // absolute: not checked here
				}
				if p := resolveLink(root, page, target, headingsOf); p != "" {
					problems = append(problems, fmt.Sprintf("%s:%d: %q: %s", page, i+1, target, p))
				}
			}
		}
	}
	return problems
}

// resolveLink says what is wrong with one relative link of page, or "" when it resolves.
func resolveLink(root, page, target string, headingsOf func(string) (map[string]bool, error)) string {
	file, anchor, _ := strings.Cut(target, "#")
	dest := page
	if file != "" {
		unescaped, err := url.PathUnescape(file)
		if err != nil {
			return fmt.Sprintf("not a valid path: %v", err)
		}
		dest = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(filepath.FromSlash(page)), filepath.FromSlash(unescaped))))
		if strings.HasPrefix(dest, "../") || dest == ".." {
			return "points outside the repository"
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(dest))); err != nil {
			return "no such file"
		}
	}
	if anchor == "" || !strings.HasSuffix(dest, ".md") {
		return ""
	}
	slugs, err := headingsOf(dest)
	if err != nil {
		return err.Error()
	}
	if decoded, err := url.PathUnescape(anchor); err == nil {
		anchor = decoded
	}
	if !slugs[anchor] {
		return fmt.Sprintf("no heading %q in %s", anchor, dest)
	}
	return ""
}

// headingSlugs lists the anchors GitHub gives the ATX headings of a markdown text outside
// code fences: the heading's text, lower-case, punctuation other than '-' and '_' dropped,
// spaces turned into '-', and "-1", "-2"… after repeats.
func headingSlugs(text string) map[string]bool {
	slugs := map[string]bool{}
	seen := map[string]int{}
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if fence.MatchString(line) {
			inFence = !inFence
			continue
		}
		m := headingRe.FindStringSubmatch(line)
		if inFence || m == nil {
			continue
		}
		s := slug(m[1])
		if n := seen[s]; n > 0 {
			slugs[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			slugs[s] = true
		}
		seen[s]++
	}
	return slugs
}

// slug is GitHub's anchor for a heading's markdown text.
func slug(heading string) string {
	heading = inlineLink.ReplaceAllString(heading, "$1")
	heading = strings.ReplaceAll(heading, "`", "")
	heading = emphasisRe.ReplaceAllString(heading, "")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
