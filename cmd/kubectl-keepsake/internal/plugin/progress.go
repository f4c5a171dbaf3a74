package plugin

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// progressLineEvery is the least time between two progress lines when
// stdout is not a terminal (a log, a CI job): often enough to see it move,
// rare enough to read.
var progressLineEvery = 5 * time.Second

// progressView shows a running session as --wait polls it: lines of news
// (phase changes) and the transfer's progress.
type progressView interface {
	// news prints a line that stays.
	news(line string)
	// show draws the progress p of what (a repository, a component).
	show(what string, p *storagev1alpha1.TransferProgress)
	// end leaves the progress as it is, to print what follows.
	end()
}

// newProgressView is a progress bar on a terminal, else plain lines.
func newProgressView(w io.Writer) progressView {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &barView{w: w}
	}
	return &lineView{w: w}
}

// lineView prints progress as plain lines, at most every
// progressLineEvery and only when it moved.
type lineView struct {
	w    io.Writer
	last time.Time
	seen int64
}

func (v *lineView) news(line string) {
	fmt.Fprintf(v.w, "%s  %s\n", time.Now().Format(time.TimeOnly), line)
}

func (v *lineView) show(what string, p *storagev1alpha1.TransferProgress) {
	if p == nil || p.BytesDone == v.seen || time.Since(v.last) < progressLineEvery {
		return
	}
	v.last, v.seen = time.Now(), p.BytesDone
	v.news(fmt.Sprintf("progress %s: %s", what, progressText(p)))
}

func (v *lineView) end() {}

// progressText is p for people: "1.2 GiB of 3.4 GiB (35%), 12 MiB/s".
func progressText(p *storagev1alpha1.TransferProgress) string {
	s := p.Done
	if p.TotalBytes > 0 {
		s += fmt.Sprintf(" of %s (%d%%)", p.Total, percent(p))
	}
	if p.Rate != "" {
		s += ", " + p.Rate
	}
	return s
}

// percent is how much of the total is done; an estimated total may be
// passed, which shows as 99% until the end.
func percent(p *storagev1alpha1.TransferProgress) int64 {
	pct := p.BytesDone * 100 / p.TotalBytes
	if pct >= 100 && p.TotalEstimated {
		return 99
	}
	return min(pct, 100)
}

// barView draws the progress as a bar (a spinner while the total is not
// known) that news lines interrupt.
type barView struct {
	w   io.Writer
	bar *progressbar.ProgressBar
	max int64
}

func (v *barView) news(line string) {
	if v.bar != nil {
		_ = v.bar.Clear()
	}
	fmt.Fprintf(v.w, "%s  %s\n", time.Now().Format(time.TimeOnly), line)
}

func (v *barView) show(what string, p *storagev1alpha1.TransferProgress) {
	if p == nil {
		return
	}
	total := p.TotalBytes
	if total > 0 && p.BytesDone > total {
		total = p.BytesDone // an estimate passed
	}
	if total <= 0 {
		total = -1
	}
	if v.bar == nil {
		v.bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(v.w), progressbar.OptionShowBytes(true),
			progressbar.OptionUseIECUnits(true), progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSpinnerType(14), progressbar.OptionSetRenderBlankState(true))
		v.max = total
	}
	if total != v.max {
		v.bar.ChangeMax64(total)
		v.max = total
	}
	desc := what
	if p.TotalEstimated {
		desc += " (total estimated)"
	}
	v.bar.Describe(desc)
	_ = v.bar.Set64(p.BytesDone)
}

func (v *barView) end() {
	if v.bar != nil {
		_ = v.bar.Exit()
		fmt.Fprintln(v.w)
	}
}
