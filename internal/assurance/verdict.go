package assurance

// Verdict is the outcome of evaluating an image against an assurance
// policy.
type Verdict struct {
	// Policy is the policy's name.
	Policy string `json:"policy"`
	// Pass is false when at least one control is violated.
	Pass bool `json:"pass"`
	// Mode is the policy's effective mode when it was evaluated
	// (ModeEnforce or ModeAudit); an audit-mode verdict that fails is
	// shown but fails nothing.
	Mode string `json:"mode,omitempty"`
	// Violations lists each violated control with its reason.
	Violations []Violation `json:"violations,omitempty"`
	// Waived lists the violations that active exceptions waived; they do
	// not fail the verdict.
	Waived []Violation `json:"waived,omitempty"`
	// Exceptions lists the exceptions that suppressed a finding or waived
	// a violation, sorted by ID.
	Exceptions []AppliedException `json:"exceptions,omitempty"`
}

// Violation is one violated control of a policy.
type Violation struct {
	// Control names the policy control, for example "max_cvss_score".
	Control string `json:"control"`
	// Message explains the violation to a user.
	Message string `json:"message"`
	// Findings lists the finding IDs that caused it, sorted.
	Findings []string `json:"findings,omitempty"`
	// Packages lists the packages that caused it as "type:name@version",
	// sorted.
	Packages []string `json:"packages,omitempty"`
}

// Fails reports whether the verdict fails the image: it did not pass and
// its policy enforces.
func (v *Verdict) Fails() bool { return v != nil && !v.Pass && v.Mode != ModeAudit }
