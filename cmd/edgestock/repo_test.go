package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// repoRoot is the repository, two levels above this package.
const repoRoot = "../.."

// The data dirs of `make run` and the README tour stay out of git.
func TestGitignore_DataDirs(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	for _, dir := range []string{"edgestock-data", "edgestock-hub-data", "wh2-data"} {
		out, err := exec.Command("git", "-C", repoRoot, "check-ignore", "--no-index", "-q", dir+"/edgestock.db").CombinedOutput()
		require.NoError(t, err, "%s/ is not in .gitignore: %s", dir, out)
	}
}

// .ci/run stops only what it started: never every process of a name.
func TestCIRun_KillsNothingByName(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, ".ci/run"))
	require.NoError(t, err)
	for i, line := range strings.Split(string(b), "\n") {
		code, _, _ := strings.Cut(line, "#")
		require.NotRegexp(t, `\b(pkill|killall)\b`, code, ".ci/run line %d kills by name: %s", i+1, line)
	}
}

// .ci/gotest prints each package's result line as it finishes and keeps
// its summary line.
func TestCIGotest_ProgressAndSummary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test on a package")
	}
	cmd := exec.Command(filepath.Join(repoRoot, ".ci/gotest"))
	cmd.Env = append(os.Environ(), "GOTEST_PACKAGES=./internal/backoff/")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Regexp(t, `(?m)^ok\s+github.com/edgestock/edgestock/internal/backoff\s`, string(out))
	require.Regexp(t, `(?m)^tests: [1-9][0-9]* passed, 0 failed, 0 skipped$`, string(out))
}

// One data-dir convention in the docs, the packaging and the configs:
// ./edgestock-data and ./edgestock-hub-data by hand, /var/lib/edgestock/
// {agent,hub} (Windows: %ProgramData%\edgestock\{agent,hub}) as a service.
func TestDocs_OneDataDirConvention(t *testing.T) {
	allowed := map[string]bool{
		"./edgestock-data": true, "./edgestock-hub-data": true,
		"/var/lib/edgestock/agent": true, "/var/lib/edgestock/hub": true,
		`C:\ProgramData\edgestock\agent`: true, `C:\ProgramData\edgestock\hub`: true,
		"wh2-data": true, // the README tour's second agent, in .gitignore
	}
	placeholder := regexp.MustCompile(`^(\$\(?[A-Z_]+\)?|[A-Z_]+|\.\.\.|…)$`)
	dataDir := regexp.MustCompile(`(?:--data-dir[ =]|data-dir: )"?([^\s"'` + "`" + `)]+)`)
	var files []string
	for _, pattern := range []string{"README.md", "docs/*.md", "configs/*.yaml", "packaging/*", "packaging/scripts/*", "Makefile"} {
		m, err := filepath.Glob(filepath.Join(repoRoot, pattern))
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.NotEmpty(t, files)
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range dataDir.FindAllStringSubmatch(string(b), -1) {
			dir := strings.TrimRight(m[1], ",;]")
			if dir != "..." {
				dir = strings.TrimSuffix(dir, ".") // the end of a sentence
			}
			require.True(t, allowed[dir] || placeholder.MatchString(dir), "%s: data dir %q is not one of the convention's", f, dir)
		}
	}
}
