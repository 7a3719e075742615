package inventory

// Report is the complete inventory of one image: what the walk found after
// applying every layer. SBOM encoders and later analyzers take it as input.
type Report struct {
	// SchemaVersion of the native JSON encoding (see docs/native-json.md).
	SchemaVersion int `json:"schemaVersion"`
	// Image describes the scanned artifact.
	Image ImageInfo `json:"image"`
	// OS is the detected operating system, nil when none was found.
	OS *OS `json:"os,omitempty"`
	// Layers lists the image's layers, base first.
	Layers []Layer `json:"layers"`
	// Packages, sorted by type, name, version and path.
	Packages []Package `json:"packages"`
	// Findings are what content analyzers found in files (secrets,
	// malware, license texts, misconfigurations), sorted by kind, path and
	// rule. Files that a later layer removed keep their findings, marked
	// Removed: their bytes still ship in the image.
	Findings []Finding `json:"findings,omitempty"`
	// Problems lists files that could not be read (corrupt package
	// databases, oversize manifests); the rest of the inventory is still
	// valid.
	Problems []Problem `json:"problems,omitempty"`
}

// ImageInfo describes an image for reports.
type ImageInfo struct {
	Ref         string   `json:"ref"`
	Source      string   `json:"source"`
	Name        string   `json:"name"`
	Digest      string   `json:"digest,omitempty"`
	ID          string   `json:"id,omitempty"`
	Platform    string   `json:"platform,omitempty"`
	RepoTags    []string `json:"repoTags,omitempty"`
	RepoDigests []string `json:"repoDigests,omitempty"`
}

// Problem is a file that an extractor could not read.
type Problem struct {
	Path      string `json:"path"`
	Layer     string `json:"layer,omitempty"`
	Extractor string `json:"extractor,omitempty"`
	Message   string `json:"message"`
}
