package manpage_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgegate/edgegate/cmd/internal/manpage"
)

// TestCommands builds edgegate and edgectl the way scripts/package.sh does
// (the version and commit set with -ldflags -X) and checks what the package
// takes from them: 'version' prints both, and 'help --man' prints a man page
// whose text is the --help text.
func TestCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both commands")
	}
	dir := t.TempDir()
	for _, name := range []string{"edgegate", "edgectl"} {
		t.Run(name, func(t *testing.T) {
			bin := filepath.Join(dir, name)
			build := exec.Command("go", "build", "-trimpath", "-o", bin,
				"-ldflags", "-X main.version=1.2.0~rc1 -X main.commit=0123456789abcdef", "github.com/edgegate/edgegate/cmd/"+name)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, out)
			}
			run := func(args ...string) string {
				cmd := exec.Command(bin, args...)
				cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1764806400") // 2025-12-04
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("%s %v: %v", name, args, err)
				}
				return string(out)
			}
			if got, want := run("version"), name+" 1.2.0~rc1 (commit 0123456789abcdef)\n"; got != want {
				t.Errorf("version printed %q, want %q", got, want)
			}
			man := run("help", "--man")
			if !strings.HasPrefix(man, ".TH "+strings.ToUpper(name)+` 1 "2025-12-04" "edgegate 1.2.0~rc1" `) {
				t.Fatalf("not a man page of version 1.2.0~rc1 dated 2025-12-04:\n%s", man)
			}
			if d := manpage.Diff(run("--help"), man); d != "" {
				t.Fatalf("the man page's text is not the help text: %s\n%s", d, man)
			}
		})
	}
}
