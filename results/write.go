package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/salvopush/salvo/sender/metrics"
)

// The files of a run folder and of a summary folder.
const (
	fileReportJSON   = "report.json"
	fileReportMD     = "report.md"
	fileHgrm         = "latency.hgrm"
	fileHlog         = "latency.hlog"
	fileTimelineCSV  = "timeline.csv"
	fileDeliveredSVG = "delivered.svg"
	fileLatencySVG   = "latency.svg"
	fileSummaryJSON  = "summary.json"
	fileSummaryMD    = "summary.md"
	fileSummarySVG   = "summary.svg"
)

// WriteRun writes a run's folder, creating dir if needed: report.json (the contract),
// report.md, latency.hgrm (percentile distribution, ms), latency.hlog (the raw histogram,
// µs), timeline.csv, delivered.svg and latency.svg. r is normally Build(in); the histogram
// and timeline come from in. Existing files of the same names are replaced.
func WriteRun(dir string, r *Report, in Inputs) error {
	files, err := RunFiles(r, in)
	if err != nil {
		return err
	}
	return writeFiles(dir, files)
}

// RunFiles returns the files WriteRun writes, by name, without writing them (a server
// that hands a run's folder out over HTTP).
func RunFiles(r *Report, in Inputs) (map[string][]byte, error) {
	h := in.Latency
	if h == nil {
		h = metrics.NewLatencyHistogram()
	}
	tl := in.Timeline
	if tl == nil {
		tl = metrics.NewTimeline(metrics.DefaultStep)
	}
	files := map[string][]byte{}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("results: encode report: %w", err)
	}
	files[fileReportJSON] = append(js, '\n')
	var hlog, csv bytes.Buffer
	span := time.Duration(h.Max()) * time.Microsecond
	if err := writeHlog(&hlog, h, r.StartedAt, span); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	files[fileHlog] = hlog.Bytes()
	if err := writeTimelineCSV(&csv, tl); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	files[fileTimelineCSV] = csv.Bytes()
	if err := renderRun(files, r, h, in.Timeline); err != nil {
		return nil, err
	}
	return files, nil
}

// Render re-renders the human-readable files of a folder written by WriteRun (report.md,
// latency.hgrm and the plots) from its report.json, latency.hlog and timeline.csv; a folder
// with a summary.json is rendered arm by arm, then its summary. It never rewrites the data
// files. Errors for missing or malformed files are *InputError.
func Render(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, fileSummaryJSON)); err == nil {
		arms, err := ReadSummary(dir)
		if err != nil {
			return err
		}
		for _, a := range arms {
			if err := Render(armDir(dir, a)); err != nil {
				return err
			}
		}
		return writeSummaryViews(dir, arms)
	}
	r, err := ReadReport(filepath.Join(dir, fileReportJSON))
	if err != nil {
		return err
	}
	h, err := readHlogFile(filepath.Join(dir, fileHlog))
	if err != nil {
		return err
	}
	tlPath := filepath.Join(dir, fileTimelineCSV)
	var tl *metrics.Timeline
	if f, err := os.Open(tlPath); err == nil {
		tl, err = readTimelineCSV(f)
		f.Close()
		if err != nil {
			return &InputError{File: tlPath, Err: err}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fileError(tlPath, err)
	}
	files := map[string][]byte{}
	if err := renderRun(files, r, h, tl); err != nil {
		return err
	}
	return writeFiles(dir, files)
}

// readHlogFile reads a latency.hlog.
func readHlogFile(p string) (*hdrhistogram.Histogram, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fileError(p, err)
	}
	defer f.Close()
	h, err := readHlog(f)
	if err != nil {
		return nil, &InputError{File: p, Err: err}
	}
	return h, nil
}

// renderRun adds the views of a run to files: report.md, latency.hgrm and the plots.
func renderRun(files map[string][]byte, r *Report, h *hdrhistogram.Histogram, tl *metrics.Timeline) error {
	var md, hgrm bytes.Buffer
	if err := writeReportMD(&md, r); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := writeHgrm(&hgrm, h); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	files[fileReportMD] = md.Bytes()
	files[fileHgrm] = hgrm.Bytes()
	files[fileDeliveredSVG] = deliveredSVG(r, h, tl)
	files[fileLatencySVG] = latencySVG(r, h)
	return nil
}

// writeFiles writes each file under dir, through a temporary file and a rename so that a
// reader never sees half a file.
func writeFiles(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	for _, name := range sortedKeys(files) {
		p := filepath.Join(dir, name)
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, files[name], 0o644); err != nil {
			return fmt.Errorf("results: write %s: %w", name, err)
		}
		if err := os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("results: write %s: %w", name, err)
		}
	}
	return nil
}

// Arm is one arm of a run with several (a sweep step, an audience size, a transport).
type Arm struct {
	// Name is a single path element: no separator, not "." or "..".
	Name   string
	Report *Report
	// Dir is the arm's folder, as given to WriteRun; it must be inside the summary's folder.
	// Empty means <summary folder>/<Name>. ReadSummary sets it.
	Dir string

	reportPath string // the report file, when read from a summary.json
}

// armDir is the arm's folder: a.Dir, or summaryDir/a.Name.
func armDir(summaryDir string, a Arm) string {
	if a.Dir != "" {
		return a.Dir
	}
	return filepath.Join(summaryDir, a.Name)
}

// relativeReport is the arm's report path relative to the summary's folder, with forward
// slashes, as summary.json lists it.
func relativeReport(summaryDir string, a Arm) (string, error) {
	if a.Dir == "" {
		return path.Join(a.Name, fileReportJSON), nil
	}
	base, err1 := filepath.Abs(summaryDir)
	arm, err2 := filepath.Abs(a.Dir)
	if err := errors.Join(err1, err2); err != nil {
		return "", err
	}
	rel, err := filepath.Rel(base, arm)
	if err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("folder %s is not inside %s", a.Dir, summaryDir)
	}
	return path.Join(filepath.ToSlash(rel), fileReportJSON), nil
}

// summaryFile is summary.json: {"arms": [{"name": "...", "report": "<arm>/report.json"}]}.
type summaryFile struct {
	Arms []summaryArm `json:"arms"`
}

type summaryArm struct {
	Name   string `json:"name"`
	Report string `json:"report"`
}

// WriteSummary writes dir/summary.json listing the arms in order, each with its report's
// path relative to dir ("<name>/report.json" for an arm written by WriteRun in
// dir/<name>), plus summary.md, a table that compares the arms, and summary.svg, the
// delivered curves of the arms whose latency.hlog is there.
func WriteSummary(dir string, arms []Arm) error {
	seen := map[string]bool{}
	sf := summaryFile{Arms: make([]summaryArm, 0, len(arms))}
	for i, a := range arms {
		if err := checkArmName(a.Name); err != nil {
			return fmt.Errorf("results: summary: arm %d: %w", i, err)
		}
		if seen[a.Name] {
			return fmt.Errorf("results: summary: arm %q listed twice", a.Name)
		}
		if a.Report == nil {
			return fmt.Errorf("results: summary: arm %q has no report", a.Name)
		}
		seen[a.Name] = true
		rel, err := relativeReport(dir, a)
		if err != nil {
			return fmt.Errorf("results: summary: arm %q: %w", a.Name, err)
		}
		sf.Arms = append(sf.Arms, summaryArm{Name: a.Name, Report: rel})
	}
	js, err := json.MarshalIndent(sf, "", "  ")
	if err != nil {
		return fmt.Errorf("results: summary: %w", err)
	}
	if err := writeFiles(dir, map[string][]byte{fileSummaryJSON: append(js, '\n')}); err != nil {
		return err
	}
	return writeSummaryViews(dir, arms)
}

// writeSummaryViews writes summary.md and summary.svg.
func writeSummaryViews(dir string, arms []Arm) error {
	var md bytes.Buffer
	if err := writeSummaryMD(&md, arms); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	var curves []armCurve
	for _, a := range arms {
		h, err := readHlogFile(filepath.Join(armDir(dir, a), fileHlog))
		if err != nil {
			continue // the table still compares the arm
		}
		curves = append(curves, armCurve{name: a.Name, report: a.Report, hist: h})
	}
	return writeFiles(dir, map[string][]byte{
		fileSummaryMD:  md.Bytes(),
		fileSummarySVG: summarySVG(curves),
	})
}

// checkArmName accepts a single, plain path element.
func checkArmName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case name == "." || name == "..":
		return fmt.Errorf("name %q is not a folder name", name)
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("name %q holds a path separator", name)
	}
	return nil
}

// ReadSummary reads dir/summary.json and the report of every arm it lists, in order. Errors
// are *InputError naming the file and field.
func ReadSummary(dir string) ([]Arm, error) {
	p := filepath.Join(dir, fileSummaryJSON)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fileError(p, err)
	}
	var sf summaryFile
	if err := json.Unmarshal(data, &sf); err != nil {
		return nil, jsonInputError(p, err)
	}
	if len(sf.Arms) == 0 {
		return nil, &InputError{File: p, Field: "arms", Err: errors.New("no arm listed")}
	}
	arms := make([]Arm, 0, len(sf.Arms))
	for i, a := range sf.Arms {
		if err := checkArmName(a.Name); err != nil {
			return nil, &InputError{File: p, Field: fmt.Sprintf("arms[%d].name", i), Err: err}
		}
		rel := filepath.FromSlash(a.Report)
		if a.Report == "" || filepath.IsAbs(rel) || !filepath.IsLocal(rel) {
			return nil, &InputError{File: p, Field: fmt.Sprintf("arms[%d].report", i), Err: fmt.Errorf("%q is not a path inside the folder", a.Report)}
		}
		r, err := ReadReport(filepath.Join(dir, rel))
		if err != nil {
			return nil, err
		}
		p := filepath.Join(dir, rel)
		arms = append(arms, Arm{Name: a.Name, Report: r, Dir: filepath.Dir(p), reportPath: p})
	}
	return arms, nil
}
