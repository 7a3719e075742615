package secret

import (
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/mamorisec/mamori/internal/inventory"
)

// ScanConfig scans the image configuration: ENV values (Path is the
// variable name), labels (Path is the label key) and build history lines
// (Layer.Index is the layer the entry produced, or for an entry that
// produced none the last layer before it; Layer.CreatedBy is the line).
func (s *Scanner) ScanConfig(cfg *v1.ConfigFile) []inventory.Finding {
	if cfg == nil {
		return nil
	}
	var out []inventory.Finding
	for _, kv := range cfg.Config.Env {
		name, _, _ := strings.Cut(kv, "=")
		for _, f := range s.scan("", []byte(kv), scopeDotenv) {
			f.Source, f.Path = inventory.SourceEnv, name
			out = append(out, f)
		}
	}
	keys := make([]string, 0, len(cfg.Config.Labels))
	for k := range cfg.Config.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, f := range s.scan("", []byte(k+"="+cfg.Config.Labels[k]), scopeDotenv) {
			f.Source, f.Path = inventory.SourceLabel, k
			out = append(out, f)
		}
	}
	layer := 0
	for _, h := range cfg.History {
		idx := max(layer-1, 0)
		if !h.EmptyLayer {
			idx = layer
			layer++
		}
		for _, f := range s.scan("", []byte(h.CreatedBy), scopeHistory) {
			f.Source = inventory.SourceHistory
			f.Layer = inventory.Layer{Index: idx, CreatedBy: h.CreatedBy}
			f.StartLine, f.EndLine = 0, 0
			out = append(out, f)
		}
	}
	return out
}
