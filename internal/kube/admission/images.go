package admission

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Image verdict statuses.
const (
	VerdictPass    = "pass"
	VerdictFail    = "fail"
	VerdictUnknown = "unknown" // never scanned
)

// ImageVerdicts answers the assurance status of an image reference.
type ImageVerdicts interface {
	// Verdict returns VerdictPass, VerdictFail (with the policy's reasons)
	// or VerdictUnknown for an image the server has not scanned. An error
	// means no verdict could be had.
	Verdict(ctx context.Context, imageRef string) (status string, reasons []string, err error)
}

// Scanner queues scans of images; an ImageVerdicts that also implements it
// is asked to scan never-scanned images under the UnscannedScan policy.
type Scanner interface {
	RequestScan(ctx context.Context, imageRef string) error
}

// imageViolation evaluates one image against the gate and returns the
// violation message, or "" when the image is admitted.
func (h *Handler) imageViolation(ctx context.Context, image string) string {
	status, reasons, err := h.images.Verdict(ctx, image)
	if err != nil {
		if h.cfg.Images.OnError == "deny" {
			return fmt.Sprintf("image %s: no assurance verdict: %v", image, err)
		}
		return ""
	}
	switch status {
	case VerdictPass:
		return ""
	case VerdictFail:
		if len(reasons) == 0 {
			return fmt.Sprintf("image %s fails its assurance policy", image)
		}
		return fmt.Sprintf("image %s fails its assurance policy: %s", image, strings.Join(reasons, "; "))
	}
	switch h.cfg.Images.Unscanned {
	case UnscannedAllow:
		return ""
	case UnscannedScan:
		if s, ok := h.images.(Scanner); ok {
			if err := s.RequestScan(ctx, image); err != nil {
				return fmt.Sprintf("image %s is not yet scanned (queueing a scan failed: %v)", image, err)
			}
			return fmt.Sprintf("image %s is not yet scanned: a scan was queued, retry when it is done", image)
		}
	}
	return fmt.Sprintf("image %s is not yet scanned", image)
}

// latestTag reports whether an image reference has no tag and no digest,
// or the tag "latest" (an unparsable reference counts as untagged).
func latestTag(image string) bool {
	if strings.Contains(image, "@") {
		return false
	}
	ref, err := name.ParseReference(image, name.WeakValidation)
	if err != nil {
		return true
	}
	tag, ok := ref.(name.Tag)
	if !ok {
		return false
	}
	// name.ParseReference defaults a missing tag to "latest".
	return tag.TagStr() == "latest"
}
