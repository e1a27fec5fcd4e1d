package results

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// writeReportMD writes report.md: the verdict first, then tables a person reads at a glance.
func writeReportMD(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# Salvo run: %s\n\n", r.Scenario)
	fmt.Fprintf(bw, "%s\n\n", verdictLine(r))
	writeGamedayMD(bw, r)

	a := r.Audience
	rows := [][]string{
		{"started", r.StartedAt.UTC().Format(time.RFC3339)},
		{"machine", fmt.Sprintf("%s/%s, %d CPUs, %s", r.Machine.OS, r.Machine.Arch, r.Machine.CPUs, r.Machine.Go)},
		{"audience", fmt.Sprintf("%s recipients (%s iOS, %s Android, %s control)",
			fmtCount(a.Recipients), fmtCount(a.IOS), fmtCount(a.Android), fmtCount(a.Control))},
		{"transport", r.Config.Transport},
		{"workers", strconv.Itoa(r.Config.Workers)},
		{"iOS share", fmtPct(r.Config.IOSShare)},
	}
	for _, kv := range flatten(r.Config.Extra) {
		rows = append(rows, []string{kv[0], kv[1]})
	}
	mdTable(bw, "ll", []string{"run", ""}, rows)

	fmt.Fprintf(bw, "## Milestones against the target\n\n")
	fmt.Fprintf(bw, "When each share of the deliverable audience (%s = recipients - control - rejected) had been accepted, from the GO press.\n\n",
		fmtCount(deliverableOf(r)))
	targetMs := r.Target.Seconds * 1000
	ms := r.Milestones
	rows = nil
	for _, m := range []struct {
		name, share string
		v           float64
	}{
		{"first", "first one", ms.First},
		{"p50", "50%", ms.P50},
		{"p95", "95%", ms.P95},
		{"p99", "99%", ms.P99},
		{"all", "100%", ms.All},
	} {
		rows = append(rows, []string{m.name, m.share, fmtMs(m.v), versusTarget(m.v, targetMs)})
	}
	mdTable(bw, "lrrl", []string{"milestone", "share accepted", "time since GO", fmt.Sprintf("vs %s s target", fmtFloat(r.Target.Seconds))}, rows)
	if v := r.VersusFirst; v != nil {
		delay := "unreached"
		if v.AllDelayMs != Unreached {
			delay = fmtMs(v.AllDelayMs)
		}
		fmt.Fprintf(bw, "Last acceptance against the first arm (%s, %s, as the %s counted): %s later.\n\n", v.Arm, fmtMs(v.AllMs), v.Source, delay)
	}

	fmt.Fprintf(bw, "## Delivery\n\n")
	d := r.Delivery
	share := func(n int64) string {
		if a.Recipients <= 0 {
			return ""
		}
		return fmtPct(float64(n) / float64(a.Recipients))
	}
	rows = [][]string{{"accepted", fmtCount(d.Accepted), share(d.Accepted)}}
	for _, reason := range sortedKeys(d.Rejected) {
		rows = append(rows, []string{"rejected: " + reason, fmtCount(d.Rejected[reason]), share(d.Rejected[reason])})
	}
	rows = append(rows,
		[]string{"failed", fmtCount(d.Failed), share(d.Failed)},
		[]string{"lost", fmtCount(d.Lost), share(d.Lost)},
		[]string{"control (not sent)", fmtCount(a.Control), share(a.Control)},
		[]string{"**recipients**", "**" + fmtCount(a.Recipients) + "**", ""},
		[]string{"duplicates (accepted twice or more)", fmtCount(d.Duplicates), share(d.Duplicates)},
		[]string{"retries (extra attempts)", fmtCount(d.Retries), ""},
	)
	mdTable(bw, "lrr", []string{"outcome", "recipients", "share"}, rows)
	if m := r.Mock; m != nil {
		fmt.Fprintf(bw, "Counted on their own by the mock servers:\n\n")
		mdTable(bw, "rrr", []string{"received", "unique", "duplicates"},
			[][]string{{fmtCount(m.Received), fmtCount(m.Unique), fmtCount(m.Duplicates)}})
		if mm := m.Milestones; mm != nil {
			fmt.Fprintf(bw, "Milestones from the mock's own receipts (when the n-th accepted request arrived), beside the sender's:\n\n")
			writeClockCheckMD(bw, r.Milestones, mm, m.MilestoneCheck)
		} else if c := m.MilestoneCheck; c != nil && c.Reason != "" {
			fmt.Fprintf(bw, "The sender's milestones were not checked against the mock's clock: %s.\n\n", c.Reason)
		}
	}

	if id := r.Identity; id != nil {
		fmt.Fprintf(bw, "Token by token, what the mock accepted against what the registry and the audience say was to be sent:\n\n")
		mdTable(bw, "rrrrr", []string{"expected", "accepted", "matched", "missing", "unexpected"},
			[][]string{{fmtCount(id.Expected), fmtCount(id.Accepted), fmtCount(id.Matched), fmtCount(id.Missing), fmtCount(id.Unexpected)}})
		for _, e := range id.Examples {
			fmt.Fprintf(bw, "- %s\n", e)
		}
		if len(id.Examples) > 0 {
			fmt.Fprintln(bw)
		}
	}

	if c := r.Campaign; c != nil {
		writeCampaignMD(bw, c)
	}

	fmt.Fprintf(bw, "## Latency from the GO press\n\n")
	fmt.Fprintf(bw, "Per accepted notification, from the press (the intended send time of all of them) to its acceptance.\n\n")
	if g := r.NoLatencySample; g != nil && *g > 0 {
		milestones := "The figures below and the milestones count only the others, so a milestone shown as never reached may have been reached unseen."
		if r.Campaign != nil && r.Campaign.Killed > 0 && r.Mock != nil && r.Mock.Milestones != nil {
			milestones = "The figures below count only the others; the milestones are the mock's, which saw every acceptance."
		}
		fmt.Fprintf(bw, "**%s accepted notifications (%s) have no latency sample**: the worker that sent them stopped before publishing its figures. %s\n\n",
			fmtCount(*g), fmtPct(float64(*g)/float64(max(r.Delivery.Accepted, 1))), milestones)
	} else if g != nil {
		fmt.Fprintf(bw, "Every accepted notification has a latency sample.\n\n")
	}
	l := r.Latency
	mdTable(bw, "rrrrrr", []string{"p50", "p90", "p95", "p99", "p99.9", "max"},
		[][]string{{fmtMs(l.P50), fmtMs(l.P90), fmtMs(l.P95), fmtMs(l.P99), fmtMs(l.P999), fmtMs(l.Max)}})

	fmt.Fprintf(bw, "## Throughput\n\n")
	mdTable(bw, "rr", []string{"mean (accepted / last acceptance)", "peak (1 s window)"},
		[][]string{{fmtNum(r.Throughput.Mean, 1) + "/s", fmtNum(r.Throughput.Peak1s, 1) + "/s"}})

	fmt.Fprintf(bw, "## Resources\n\n")
	res := r.Resources
	if res == (Resources{}) {
		fmt.Fprintf(bw, "Not measured for this run.\n\n")
	} else {
		mdTable(bw, "lr", []string{"resource", "value"}, [][]string{
			{"prepare (load campaign, workers ready)", fmtMs(res.PrepareMs)},
			{"sender CPU", fmtNum(res.SenderCPUSeconds, 3) + " s"},
			{"sender CPU per notification", fmtNum(res.SenderCPUUsPerNotification, 3) + " µs"},
			{"sender peak RSS", fmtBytes(float64(res.SenderPeakRSSBytes))},
			{"resident bytes per recipient", fmtNum(res.ResidentBytesPerRecipient, 1) + " B"},
			{"mock CPU", fmtNum(res.MockCPUSeconds, 3) + " s"},
		})
	}

	fmt.Fprintf(bw, "## Capacity\n\n")
	if c := r.Capacity; c == nil {
		fmt.Fprintf(bw, "No sender CPU measured for this run.\n\n")
	} else {
		fmt.Fprintf(bw, "At %s µs of sender CPU per notification, %s recipients within %s s need %s send cores "+
			"(a floor: nothing else on them, work evenly spread). FCM: %s Android recipients need a quota of %s "+
			"per minute, %sx the default %s. APNs: %s/s needs %d connections (%s streams each, %s ms round trip, "+
			"assumed). Model and assumptions: docs/capacity.md.\n\n",
			fmtNum(c.SenderCPUUsPerNotification, 3), fmtCount(c.Recipients), fmtFloat(c.TargetSeconds), fmtNum(c.SendCores, 2),
			fmtCount(c.FCM.Android), fmtCount(c.FCM.QuotaPerMinuteNeeded), fmtNum(c.FCM.QuotaMultiple, 2),
			fmtCount(c.FCM.DefaultQuotaPerMinute), fmtNum(c.APNs.PerSecond, 0), c.APNs.Connections,
			fmtCount(int64(c.APNs.StreamsPerConnection)), fmtFloat(c.APNs.RoundTripMs))
	}

	fmt.Fprintf(bw, "## Faults injected\n\n")
	if faults := flatten(r.Faults); len(faults) > 0 {
		rows = nil
		for _, kv := range faults {
			rows = append(rows, []string{kv[0], kv[1]})
		}
		mdTable(bw, "ll", []string{"fault", "setting"}, rows)
	} else {
		fmt.Fprintf(bw, "None.\n\n")
	}

	fmt.Fprintf(bw, "## Criteria\n\n")
	mdTable(bw, "ll", []string{"criterion", "bound"}, criteriaRows(r))

	fmt.Fprintf(bw, "## Failures\n\n")
	if len(r.Failures) == 0 {
		fmt.Fprintf(bw, "None: every truth check and criterion held.\n\n")
	}
	for _, f := range r.Failures {
		fmt.Fprintf(bw, "- %s\n", f)
	}
	if len(r.Failures) > 0 {
		fmt.Fprintln(bw)
	}

	fmt.Fprintf(bw, "## Plots and raw data\n\n")
	fmt.Fprintf(bw, "![Share of the deliverable audience accepted over time](%s)\n\n", fileDeliveredSVG)
	fmt.Fprintf(bw, "![Latency by percentile](%s)\n\n", fileLatencySVG)
	fmt.Fprintf(bw, "- `%s`: this report as data (schema %s)\n", fileReportJSON, Schema)
	fmt.Fprintf(bw, "- `%s`: HdrHistogram percentile distribution, milliseconds\n", fileHgrm)
	fmt.Fprintf(bw, "- `%s`: HdrHistogram interval log, microseconds (raw histogram)\n", fileHlog)
	fmt.Fprintf(bw, "- `%s`: accepted and rejected per 100 ms since the press\n", fileTimelineCSV)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("report.md: %w", err)
	}
	return nil
}

// verdictLine sums the run up in one line: the verdict, then the target with its measured
// milestone (a missed target is said plainly even when the run passed).
func verdictLine(r *Report) string {
	target := r.TargetLine()
	switch v := r.Verdict(); v {
	case "FAIL":
		n := len(r.Failures)
		plural := "s"
		if n == 1 {
			plural = ""
		}
		return fmt.Sprintf("**FAIL**: %d check%s did not hold (see Failures). %s.", n, plural, upperFirst(target))
	case "PASS":
		return "**PASS**. " + upperFirst(target) + "."
	default:
		return "**" + v + "**: every criterion held. " + upperFirst(target) + "."
	}
}

// upperFirst returns s with its first letter in upper case.
func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// versusTarget says how far a milestone is from the target.
func versusTarget(v, targetMs float64) string {
	switch {
	case v == Unreached:
		return "never reached"
	case v <= targetMs:
		return fmtMs(targetMs-v) + " to spare"
	}
	return "**" + fmtMs(v-targetMs) + " late**"
}

// deliverableOf is the audience the milestones are shares of.
func deliverableOf(r *Report) int64 {
	return max(r.Audience.Recipients-r.Audience.Control-r.Delivery.RejectedTotal(), 0)
}

// criteriaRows lists the run's criteria in words.
func criteriaRows(r *Report) [][]string {
	c := r.Criteria
	count := func(n int64) string {
		if n < 0 {
			return "no bound"
		}
		return "at most " + fmtCount(n)
	}
	bound := func(v float64, f func(float64) string) string {
		if v <= 0 {
			return "no bound"
		}
		return f(v)
	}
	req := "reported, not required"
	if c.RequireTarget {
		req = "required"
	}
	rows := [][]string{
		{fmt.Sprintf("target (%s within %s s)", percentileName(r.Target.Percentile), fmtFloat(r.Target.Seconds)), req},
		{"lost", count(c.MaxLost)},
		{"duplicates", count(c.MaxDuplicates)},
		{"failed", count(c.MaxFailed)},
		{"latency p95", bound(c.MaxP95Ms, func(v float64) string { return "at most " + fmtMs(v) })},
		{"latency p99", bound(c.MaxP99Ms, func(v float64) string { return "at most " + fmtMs(v) })},
		{"mean throughput", bound(c.MinThroughputPerS, func(v float64) string { return "at least " + fmtNum(v, 1) + "/s" })},
		{"prepare", bound(c.MaxPrepareMs, func(v float64) string { return "at most " + fmtMs(v) })},
		{"sender peak RSS", bound(float64(c.MaxSenderPeakRSSBytes), func(v float64) string { return "at most " + fmtBytes(v) })},
		{"truth checks", "always: histogram = accepted = mock unique; recipients = accepted + rejected + failed + lost + control; the sender's milestones no earlier than the mock's receipts by more than 50 ms + 1%"},
	}
	if c.ExpectState != "" {
		rows = append(rows, []string{"terminal state", c.ExpectState})
	}
	if c.RequireStall {
		rows = append(rows, []string{"stall shown in the status", "required"})
	}
	if c.RequireRedrive {
		rows = append(rows, []string{"dead letters redriven", "required: every dead-lettered recipient sent again"})
	}
	if c.RequireRedelivery {
		rows = append(rows, []string{"batch and range messages delivered twice", "required"})
	}
	if c.MaxAllDelayMs > 0 {
		rows = append(rows, []string{"last acceptance vs the first arm", "at most " + fmtMs(c.MaxAllDelayMs) + " later"})
	}
	if r.Campaign != nil && r.Campaign.InFlightBound > 0 {
		rows = append(rows, []string{"duplicates allowed for killed processes", "plus " + fmtCount(r.Campaign.InFlightBound) + " (send loops x chunk each)"})
	}
	if c.MaxRatePerS > 0 {
		rows = append(rows, []string{"pushes per second, per provider",
			fmt.Sprintf("at most %s (cap %s/s + 10%%)", fmtFloat(round(RateAllowance(c.MaxRatePerS), 1)), fmtFloat(c.MaxRatePerS))})
	}
	return rows
}

// writeCampaignMD writes the campaign's account of the run and the run's events.
func writeCampaignMD(bw io.Writer, c *Campaign) {
	fmt.Fprintf(bw, "## Campaign\n\n")
	fmt.Fprintf(bw, "As the campaign API told it.\n\n")
	state := c.State
	if state == "" {
		state = "no terminal state"
	}
	if len(c.States) > 1 {
		state += " (terminal states in turn: " + strings.Join(c.States, ", ") + ")"
	}
	stall := "none"
	if st := c.Stall; st != nil {
		stall = fmt.Sprintf("since %s, seen at %s: %s", fmtMs(st.SinceMs), fmtMs(st.SeenMs), st.Cause)
	}
	rows := [][]string{
		{"state", state},
		{"dead-lettered (before any redrive)", fmtCount(c.DeadLettered)},
		{"redriven (accepted by the mock after the redrive)", fmtCount(c.Redriven)},
		{"stall shown in the status", stall},
		{"devices excluded for want of a message", fmt.Sprintf("%s (the registry holds %s of the platforms left out)",
			fmtCount(c.NoMessage), fmtCount(c.NoMessageExpected))},
	}
	if q := c.DeadLetterQueue; q != nil {
		rows = append(rows, []string{"recipients named by the dead-letter queue", fmtCount(*q)})
	}
	for _, reason := range sortedKeys(c.FailedBy) {
		rows = append(rows, []string{"given up on: " + reason, fmtCount(c.FailedBy[reason])})
	}
	if c.BatchesSentTwice > 0 || c.RangesDeliveredTwice > 0 {
		rows = append(rows, []string{"delivered twice", fmt.Sprintf("%s batch messages sent twice, %s range messages delivered again",
			fmtCount(c.BatchesSentTwice), fmtCount(c.RangesDeliveredTwice))})
	}
	if c.Killed > 0 {
		rows = append(rows, []string{"sending processes killed (SIGKILL)", fmt.Sprintf("%d; in flight at most %s", c.Killed, fmtCount(c.InFlightBound))})
	}
	if c.Malformed > 0 {
		rows = append(rows, []string{"malformed batch messages", fmt.Sprintf("%s put on the batch queue, %s dead-lettered, %s messages left on the batch queue",
			fmtCount(c.Malformed), fmtCount(c.MalformedDeadLettered), fmtCount(c.BatchQueueLeft))})
	}
	mdTable(bw, "ll", []string{"", ""}, rows)
	if len(c.Events) > 0 {
		rows = nil
		for i, e := range c.Events {
			rows = append(rows, []string{strconv.Itoa(i + 1), fmtMs(e.AtMs), e.What})
		}
		fmt.Fprintf(bw, "What the run did meanwhile, numbered as the dotted lines of %s:\n\n", fileDeliveredSVG)
		mdTable(bw, "rrl", []string{"", "since GO", "event"}, rows)
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// flatten turns any JSON-marshalable value into sorted (dotted path, value) pairs: objects
// become "a.b", arrays "a[0]", strings print bare. Nil gives nothing.
func flatten(v any) [][2]string {
	if v == nil {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return [][2]string{{"(unprintable)", err.Error()}}
	}
	var generic any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return [][2]string{{"(unprintable)", err.Error()}}
	}
	var out [][2]string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range sortedKeys(x) {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, x[k])
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		case string:
			out = append(out, [2]string{path, x})
		case nil:
			out = append(out, [2]string{path, "null"})
		default:
			b, _ := json.Marshal(x)
			out = append(out, [2]string{path, string(b)})
		}
	}
	walk("", generic)
	for i := range out {
		if out[i][0] == "" {
			out[i][0] = "value"
		}
	}
	return out
}

// writeSummaryMD writes summary.md: one row per arm, in order.
func writeSummaryMD(w io.Writer, arms []Arm) error {
	bw := bufio.NewWriter(w)
	var scenarios []string
	seen := map[string]bool{}
	best := -1
	for i, a := range arms {
		if !seen[a.Report.Scenario] {
			seen[a.Report.Scenario] = true
			scenarios = append(scenarios, a.Report.Scenario)
		}
		if best < 0 || a.Report.Throughput.Mean > arms[best].Report.Throughput.Mean {
			best = i
		}
	}
	fmt.Fprintf(bw, "# Salvo summary: %s\n\n", strings.Join(scenarios, ", "))
	passed := 0
	for _, a := range arms {
		if a.Report.Pass {
			passed++
		}
	}
	fmt.Fprintf(bw, "%d of %d arms passed.", passed, len(arms))
	if best >= 0 {
		fmt.Fprintf(bw, " Highest mean throughput: **%s** (%s/s).", arms[best].Name, fmtNum(arms[best].Report.Throughput.Mean, 1))
	}
	firstName, first := "first arm", float64(Unreached)
	if len(arms) > 0 {
		firstName, first = arms[0].Name, arms[0].Report.Milestones.P99
	}
	fmt.Fprintf(bw, " Milestones are shares of each arm's deliverable audience; \"vs %s\" is each arm's milestone p99 minus that first arm's.\n\n", firstName)
	var rows [][]string
	for _, a := range arms {
		r := a.Report
		vsFirst := "-"
		if r.Milestones.P99 != Unreached && first != Unreached {
			d := r.Milestones.P99 - first
			vsFirst = fmtMs(d)
			if d >= 0 {
				vsFirst = "+" + vsFirst
			}
		}
		verdict := r.Verdict()
		if verdict != "PASS" {
			verdict = "**" + verdict + "**"
		}
		met := "met"
		if !r.Target.Met {
			met = "missed"
		}
		rows = append(rows, []string{
			a.Name, verdict, fmtCount(r.Audience.Recipients), fmtCount(r.Delivery.Accepted),
			fmtNum(r.Throughput.Mean, 1), fmtNum(r.Throughput.Peak1s, 1),
			fmtMs(r.Latency.P95), fmtMs(r.Latency.P99),
			fmtMs(r.Milestones.P95), fmtMs(r.Milestones.P99), vsFirst, fmtMs(r.Milestones.All), fmtCount(r.Delivery.Retries),
			fmt.Sprintf("%s (%s)", met, fmtMs(r.Target.MilestoneMs)),
			fmtBytes(float64(r.Resources.SenderPeakRSSBytes)), fmtNum(r.Resources.ResidentBytesPerRecipient, 1),
			fmtMs(r.Resources.PrepareMs), fmtNum(r.Resources.SenderCPUUsPerNotification, 3),
		})
	}
	mdTable(bw, "llrrrrrrrrrrrlrrrr", []string{
		"arm", "result", "recipients", "accepted", "mean /s", "peak 1 s /s", "latency p95", "latency p99",
		"milestone p95", "milestone p99", "vs " + firstName, "all accepted", "retries", "target", "sender peak RSS", "bytes/recipient",
		"prepare", "CPU µs/notification",
	}, rows)
	for _, a := range arms {
		if len(a.Report.Failures) == 0 {
			continue
		}
		fmt.Fprintf(bw, "## %s: failures\n\n", a.Name)
		for _, f := range a.Report.Failures {
			fmt.Fprintf(bw, "- %s\n", f)
		}
		fmt.Fprintln(bw)
	}
	fmt.Fprintf(bw, "![Share of the deliverable audience accepted over time, per arm](%s)\n\n", fileSummarySVG)
	fmt.Fprintf(bw, "Each arm's own report is in `<arm>/report.md`.\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("summary.md: %w", err)
	}
	return nil
}

// writeClockCheckMD writes the mock's milestones beside the sender's and their gap: the two
// clocks' agreement, judged or not and why.
func writeClockCheckMD(w io.Writer, sender Milestones, mm *Milestones, c *ClockCheck) {
	head := []string{"", "first", "p50", "p95", "p99", "all"}
	rows := [][]string{{"mock's receipts", fmtMs(mm.First), fmtMs(mm.P50), fmtMs(mm.P95), fmtMs(mm.P99), fmtMs(mm.All)}}
	if c != nil && c.SenderMs == nil {
		rows = append(rows, []string{"sender's clock", fmtMs(sender.First), fmtMs(sender.P50), fmtMs(sender.P95), fmtMs(sender.P99), fmtMs(sender.All)})
	}
	if c == nil {
		mdTable(w, "lrrrrr", head, rows)
		return
	}
	figures := func(f *MilestoneFigures, format func(float64) string) []string {
		out := make([]string, 5)
		for i, v := range []*float64{f.First, f.P50, f.P95, f.P99, f.All} {
			out[i] = "-"
			if v != nil {
				out[i] = format(*v)
			}
		}
		return out
	}
	if c.SenderMs != nil {
		rows = append(rows, append([]string{"sender's clock (own samples)"}, figures(c.SenderMs, fmtMs)...))
	}
	if c.MockLateMs != nil {
		rows = append(rows, append([]string{fmt.Sprintf("mock, %s receipts later", fmtCount(c.ExtraReceipts))}, figures(c.MockLateMs, fmtMs)...))
	}
	if c.GapMs != nil {
		rows = append(rows, append([]string{"sender - mock"}, figures(c.GapMs, clockGapMs)...))
	}
	if c.AllowedMs != nil {
		label := "allowed gap"
		if c.MockLateMs != nil {
			label = "allowed outside the span"
		}
		rows = append(rows, append([]string{label}, figures(c.AllowedMs, fmtMs)...))
	}
	mdTable(w, "lrrrrr", head, rows)
	switch {
	case c.Judged:
		fmt.Fprintf(w, "The sender's clock (when it read each answer) against the mock's (when each request arrived): at p50, p95, p99 and all the sender's may not read earlier than the mock's by more than %s ms + %s%% of the later figure (a truth check); later by more is stated, not failed (a sender short of CPU reads its answers late); first is shown, not judged.",
			fmtFloat(ClockToleranceMs), fmtFloat(ClockToleranceShare*100))
	default:
		fmt.Fprintf(w, "The gaps were not judged.")
	}
	if c.Reason != "" {
		fmt.Fprintf(w, " %s%s.", strings.ToUpper(c.Reason[:1]), c.Reason[1:])
	}
	fmt.Fprintf(w, "\n\n")
	for _, o := range c.OverAllowance {
		fmt.Fprintf(w, "- %s\n", o)
	}
	if len(c.OverAllowance) > 0 {
		fmt.Fprintln(w)
	}
}
