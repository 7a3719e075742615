package assurance

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/inventory"
	"github.com/mamorisec/mamori/internal/vuln"
)

// Exception is an accepted risk: while it is active it suppresses one
// finding, or waives one control, for the images its Image pattern
// matches. The server stores exceptions; Evaluate receives them in
// Subject.Exceptions.
type Exception struct {
	// ID identifies the exception in verdicts.
	ID string `json:"id"`
	// Image is a pattern on Subject.Image in which "*" matches any run of
	// characters: "registry.example.com/payments/*", "*" for every image.
	Image string `json:"image"`
	// Finding is a vulnerability ID or alias (any case), or the rule ID
	// of a secret, malware or misconfiguration finding (a misconfiguration
	// also by its CIS ID). Exactly one of Finding and Control is set.
	Finding string `json:"finding,omitempty"`
	// Control is the name of a control whose violation is waived
	// ("max_image_age").
	Control string `json:"control,omitempty"`
	// Expires is when the exception stops applying. It is required.
	Expires time.Time `json:"expires"`
	// Justification says why the risk is accepted.
	Justification string `json:"justification"`
	// CreatedBy is who created it.
	CreatedBy string `json:"createdBy,omitempty"`
}

// AppliedException is an exception that changed a verdict.
type AppliedException struct {
	// ID, Justification, Expires and CreatedBy are the exception's.
	ID            string    `json:"id"`
	Justification string    `json:"justification"`
	Expires       time.Time `json:"expires"`
	CreatedBy     string    `json:"createdBy,omitempty"`
	// Findings are the IDs of the findings it suppressed, sorted.
	Findings []string `json:"findings,omitempty"`
	// Controls are the violated controls it waived.
	Controls []string `json:"controls,omitempty"`
}

// controlNames are the names an exception's Control may take.
var controlNames = []string{
	ControlMaxSeverity, ControlMaxCVSSScore, ControlSeverityCounts, ControlBlockCVEs, ControlBlockPackages,
	ControlMalware, ControlSecrets, ControlRoot, ControlMisconfigs, ControlLicenses,
	ControlImageAge, ControlBaseImages, ControlLabels, ControlSignature,
}

// Validate checks an exception before it is stored: an ID, an image
// pattern, exactly one of Finding and Control (a known control name), an
// expiry and a justification.
func (e *Exception) Validate() error {
	var problem string
	switch {
	case strings.TrimSpace(e.ID) == "":
		problem = "id is missing"
	case strings.TrimSpace(e.Image) == "":
		problem = `image is missing: give an image pattern, or "*" for every image`
	case (e.Finding == "") == (e.Control == ""):
		problem = "give exactly one of finding and control"
	case e.Finding != "" && (strings.TrimSpace(e.Finding) != e.Finding || strings.ContainsAny(e.Finding, " \t\n")):
		problem = fmt.Sprintf("finding %q is not a finding ID", e.Finding)
	case e.Control != "" && !slices.Contains(controlNames, e.Control):
		problem = fmt.Sprintf("unknown control %q (known controls: %s)", e.Control, strings.Join(controlNames, ", "))
	case e.Expires.IsZero():
		problem = "expires is missing: every exception must expire"
	case strings.TrimSpace(e.Justification) == "":
		problem = "justification is missing: say why the risk is accepted"
	default:
		return nil
	}
	return fmt.Errorf("exception %q: %s", e.ID, problem)
}

// activeAt reports whether the exception applies to image at now: it is
// valid, now is known and before its expiry, and the pattern matches.
func (e *Exception) activeAt(image string, now time.Time) bool {
	return e.Validate() == nil && !now.IsZero() && now.Before(e.Expires) && matchGlob(e.Image, image)
}

// exceptions tracks the active exceptions of one evaluation and what each
// did.
type exceptions struct {
	active  []*Exception
	applied map[string]*AppliedException
}

func newExceptions(s *Subject) *exceptions {
	x := &exceptions{applied: map[string]*AppliedException{}}
	for i := range s.Exceptions {
		if e := &s.Exceptions[i]; e.activeAt(s.Image, s.Now) {
			x.active = append(x.active, e)
		}
	}
	return x
}

// record notes that e suppressed finding or waived control.
func (x *exceptions) record(e *Exception, finding, control string) {
	a := x.applied[e.ID]
	if a == nil {
		a = &AppliedException{ID: e.ID, Justification: e.Justification, Expires: e.Expires, CreatedBy: e.CreatedBy}
		x.applied[e.ID] = a
	}
	if finding != "" {
		a.Findings = append(a.Findings, finding)
	}
	if control != "" {
		a.Controls = append(a.Controls, control)
	}
}

// vuln reports whether an exception suppresses the vulnerability finding,
// recording the first that does.
func (x *exceptions) vuln(f *vuln.Finding) bool {
	for _, e := range x.active {
		if e.Finding != "" && f.HasID(e.Finding) {
			x.record(e, f.ID, "")
			return true
		}
	}
	return false
}

// files returns the secret, malware or misconfiguration findings no
// exception suppresses.
func (x *exceptions) files(fs []inventory.Finding) []inventory.Finding {
	var out []inventory.Finding
next:
	for _, f := range fs {
		for _, e := range x.active {
			if e.Finding != "" && (strings.EqualFold(f.RuleID, e.Finding) || f.Category != "" && strings.EqualFold(f.Category, e.Finding)) {
				x.record(e, f.RuleID, "")
				continue next
			}
		}
		out = append(out, f)
	}
	return out
}

// waive splits violations into those that stand and those an exception
// waives.
func (x *exceptions) waive(vs []Violation) (stand, waived []Violation) {
next:
	for _, v := range vs {
		for _, e := range x.active {
			if e.Control == v.Control {
				x.record(e, "", v.Control)
				waived = append(waived, v)
				continue next
			}
		}
		stand = append(stand, v)
	}
	return stand, waived
}

// result returns the applied exceptions sorted by ID, their lists sorted.
func (x *exceptions) result() []AppliedException {
	out := make([]AppliedException, 0, len(x.applied))
	for _, a := range x.applied {
		a.Findings = sortedUnique(a.Findings)
		a.Controls = sortedUnique(a.Controls)
		out = append(out, *a)
	}
	if len(out) == 0 {
		return nil
	}
	slices.SortFunc(out, func(a, b AppliedException) int { return strings.Compare(a.ID, b.ID) })
	return out
}
