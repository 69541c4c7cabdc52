package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Docker cannot run here, so deploy/ is checked by reading it: the
// manifests parse, every `pipeline` command line in them uses commands and
// flags that exist, the numbers that must agree do, and the image installs
// the libraries the binary links.

const deployDir = "../../deploy"

// invocation is one `pipeline CMD args...` found in a manifest or script.
type invocation struct {
	file string
	args []string // after "pipeline"
}

// flagsOf returns the flags `pipeline cmd -h` lists.
func flagsOf(t *testing.T, cmd string) map[string]bool {
	t.Helper()
	r := run(t, nil, cmd, "-h")
	if r.code != 0 {
		t.Fatalf("pipeline %s -h: exit %d\n%s", cmd, r.code, r.stderr)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(r.stderr+r.stdout, -1) {
		flags[m[1]] = true
	}
	if len(flags) == 0 {
		t.Fatalf("pipeline %s -h lists no flags:\n%s", cmd, r.stderr)
	}
	return flags
}

// checkInvocations checks each invocation's command and flags.
func checkInvocations(t *testing.T, invs []invocation) {
	t.Helper()
	cmds := map[string]map[string]bool{}
	for _, inv := range invs {
		if len(inv.args) == 0 {
			t.Errorf("%s: `pipeline` without a command", inv.file)
			continue
		}
		cmd := inv.args[0]
		if cmds[cmd] == nil {
			found := false
			for _, c := range commands {
				found = found || c.name == cmd
			}
			if !found {
				t.Errorf("%s: pipeline %s: no such command", inv.file, cmd)
				continue
			}
			cmds[cmd] = flagsOf(t, cmd)
		}
		for _, a := range inv.args[1:] {
			if !strings.HasPrefix(a, "-") || a == "-" {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if !cmds[cmd][name] {
				t.Errorf("%s: pipeline %s has no flag %s", inv.file, cmd, a)
			}
		}
	}
}

// shellInvocations finds `pipeline CMD ...` in a shell script: lines joined
// at trailing backslashes, words up to the end of the simple command.
func shellInvocations(t *testing.T, file string) []invocation {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	var out []invocation
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		words := strings.Fields(line)
		for i, w := range words {
			if w != "pipeline" || (i > 0 && words[i-1] == "command") {
				continue
			}
			inv := invocation{file: file}
			for _, a := range words[i+1:] {
				if slices.Contains([]string{";", "&&", "||", "|", "&", ":::", ">", "2>&1"}, a) || strings.HasPrefix(a, ">") {
					break
				}
				inv.args = append(inv.args, strings.Trim(a, `"'`))
			}
			out = append(out, inv)
		}
	}
	return out
}

// job is what the test reads of a Job manifest.
type job struct {
	Kind     string
	Metadata struct{ Name string }
	Spec     struct {
		CompletionMode string `yaml:"completionMode"`
		Completions    int
		Parallelism    int
		Template       struct {
			Spec struct {
				Containers []struct {
					Name         string
					Image        string
					Command      []string
					Args         []string
					VolumeMounts []struct {
						Name      string
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				}
				Volumes []struct{ Name string }
			}
		}
	}
}

func readJobs(t *testing.T, file string) []job {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var jobs []job
	for {
		var j job
		err := dec.Decode(&j)
		if errors.Is(err, io.EOF) {
			return jobs
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		jobs = append(jobs, j)
	}
}

func TestDeploy_Manifests(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(deployDir, "kubernetes", "*.yaml"))
	if len(files) < 2 {
		t.Fatalf("kubernetes manifests: %v", files)
	}
	var invs []invocation
	var extract, merge *job
	images := map[string]bool{}
	for _, f := range files {
		for _, j := range readJobs(t, f) {
			if j.Kind != "Job" {
				t.Errorf("%s: kind %q", f, j.Kind)
				continue
			}
			j := j
			for _, c := range j.Spec.Template.Spec.Containers {
				images[c.Image] = true
				args := append(slices.Clone(c.Command), c.Args...)
				if len(c.Command) > 0 && c.Command[0] != "pipeline" {
					t.Errorf("%s: container %s runs %v: the image's entrypoint is pipeline", f, c.Name, c.Command)
				}
				if len(c.Command) > 0 {
					args = args[1:]
				}
				invs = append(invs, invocation{file: f, args: args})
				vols := map[string]bool{}
				for _, v := range j.Spec.Template.Spec.Volumes {
					vols[v.Name] = true
				}
				for _, m := range c.VolumeMounts {
					if !vols[m.Name] {
						t.Errorf("%s: mount %s of a volume the pod does not have", f, m.Name)
					}
				}
				switch args[0] {
				case "extract":
					extract = &j
				case "merge":
					merge = &j
				}
			}
		}
	}
	if extract == nil || merge == nil {
		t.Fatalf("want an extract Job and a merge Job in %v", files)
	}
	if len(images) != 1 {
		t.Errorf("the Jobs use different images: %v", images)
	}
	if extract.Spec.CompletionMode != "Indexed" || extract.Spec.Completions < 2 || extract.Spec.Parallelism < 1 {
		t.Errorf("extract Job: completionMode %q, completions %d, parallelism %d", extract.Spec.CompletionMode, extract.Spec.Completions, extract.Spec.Parallelism)
	}
	ex := extract.Spec.Template.Spec.Containers[0].Args
	if i := slices.Index(ex, "--shards"); i < 0 || ex[i+1] != strconv.Itoa(extract.Spec.Completions) {
		t.Errorf("extract Job: --shards must equal completions %d: %v", extract.Spec.Completions, ex)
	}
	db := ex[slices.Index(ex, "--db")+1]
	if !strings.Contains(db, "{shard}") {
		t.Errorf("extract Job: --db %s: one database per index needs {shard}", db)
	}
	mg := merge.Spec.Template.Spec.Containers[0].Args
	glob := strings.ReplaceAll(db, "{shard}", "*")
	if !slices.Contains(mg, glob) || !slices.Contains(mg, "--into") {
		t.Errorf("merge Job %v does not merge %s", mg, glob)
	}
	for _, sh := range []string{"kubernetes/run.sh", "slurm/extract.sbatch", "slurm/merge.sbatch", "slurm/submit.sh", "parallel.sh"} {
		f := filepath.Join(deployDir, sh)
		if out, err := exec.Command("bash", "-n", f).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", f, err, out)
		}
		invs = append(invs, shellInvocations(t, f)...)
	}
	n := map[string]int{}
	for _, inv := range invs {
		n[inv.args[0]]++
	}
	if n["extract"] < 4 || n["merge"] < 3 {
		t.Errorf("found %d extract and %d merge command lines in deploy/, want at least 4 (Kubernetes, Slurm, parallel, xargs) and 3 (Kubernetes, Slurm, one machine)", n["extract"], n["merge"])
	}
	checkInvocations(t, invs)
	// Slurm: the array's tasks are the shards.
	b, _ := os.ReadFile(filepath.Join(deployDir, "slurm", "extract.sbatch"))
	if !bytes.Contains(b, []byte("#SBATCH --array=")) || !bytes.Contains(b, []byte(`--shards "$SLURM_ARRAY_TASK_COUNT"`)) {
		t.Errorf("slurm/extract.sbatch: want an --array job passing --shards \"$SLURM_ARRAY_TASK_COUNT\"")
	}
	b, _ = os.ReadFile(filepath.Join(deployDir, "slurm", "submit.sh"))
	if !bytes.Contains(b, []byte("--dependency=afterok:")) {
		t.Errorf("slurm/submit.sh: the merge must depend on the array (afterok)")
	}
}

// TestDeploy_Dockerfile: Debian 12, the build packages from scripts/deps.sh,
// the runtime packages from `deps.sh --runtime`, and that runtime list
// covers every shared library the binary needs (readelf + dpkg -S).
func TestDeploy_Dockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) > 0 && l != "" && !strings.HasPrefix(l, "#") {
			stages[len(stages)-1] = append(stages[len(stages)-1], l)
		}
	}
	if len(stages) != 2 {
		t.Fatalf("want a build and a runtime stage, got %d", len(stages))
	}
	build, final := strings.Join(stages[0], "\n"), strings.Join(stages[1], "\n")
	for _, c := range []struct{ text, want, why string }{
		{build, "bookworm", "the build stage is Debian 12"},
		{build, "RUN scripts/deps.sh", "the build stage installs deps.sh's packages"},
		{build, "./cmd/pipeline", "the build stage builds the binary"},
		{final, "FROM debian:12", "the image is Debian 12"},
		{final, "deps.sh --runtime", "the image installs deps.sh's runtime list"},
		{final, "/usr/local/bin/pipeline", "the image has the binary"},
		{final, `ENTRYPOINT ["pipeline"]`, "the manifests pass pipeline's arguments"},
	} {
		if !strings.Contains(c.text, c.want) {
			t.Errorf("Dockerfile: %s: no %q", c.why, c.want)
		}
	}
	out, err := exec.Command("bash", "../../scripts/deps.sh", "--print-runtime").Output()
	if err != nil {
		t.Fatalf("deps.sh --print-runtime: %v", err)
	}
	runtime := strings.Fields(string(out))
	if _, err := exec.LookPath("readelf"); err != nil {
		t.Skip("no readelf (binutils): cannot read the binary's libraries")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("no dpkg: not Debian, cannot map libraries to packages")
	}
	elf, err := exec.Command("readelf", "-d", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	ldd, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	where := map[string]string{}
	for _, l := range strings.Split(string(ldd), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[1] == "=>" {
			where[f[0]] = f[2]
		}
	}
	// In every Debian image (essential): no need to list them.
	base := map[string]bool{"libc6": true, "libgcc-s1": true}
	for _, m := range regexp.MustCompile(`\(NEEDED\)\s+Shared library: \[(.+)\]`).FindAllStringSubmatch(string(elf), -1) {
		lib := m[1]
		path, err := filepath.EvalSymlinks(where[lib])
		if err != nil {
			t.Errorf("%s: not found by ldd", lib)
			continue
		}
		o, err := exec.Command("dpkg", "-S", path).Output()
		if err != nil {
			// usrmerge: dpkg may know /lib/... for /usr/lib/...
			o, err = exec.Command("dpkg", "-S", strings.TrimPrefix(path, "/usr")).Output()
		}
		if err != nil {
			t.Errorf("%s (%s): no package owns it", lib, path)
			continue
		}
		pkg, _, _ := strings.Cut(strings.TrimSpace(string(o)), ":")
		if !base[pkg] && !slices.Contains(runtime, pkg) {
			t.Errorf("the binary needs %s from package %s, which scripts/deps.sh's runtime list lacks: the image would not run", lib, pkg)
		}
	}
}
