-- Lists of fixable findings sorted by CVSS score (the usual triage view)
-- walk this index in order instead of sorting every fixable finding.
CREATE INDEX vulnerabilities_fixable_cvss ON vulnerabilities (fixable, cvss, id);
