package assurance

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mamorisec/mamori/internal/signature"
)

const (
	layerA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	layerB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	layerC = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	digest = "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
)

// testKey is testdata/cosign.pub.
func testKey(t testing.TB) *signature.PublicKey {
	t.Helper()
	b, err := os.ReadFile("testdata/cosign.pub")
	if err != nil {
		t.Fatal(err)
	}
	k, err := signature.ParsePublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		text    string
		wantErr string
	}{
		{in: "90d", want: 90 * 24 * time.Hour, text: "90d"},
		{in: "14d", want: 14 * 24 * time.Hour, text: "2w"},
		{in: "12w", want: 12 * 7 * 24 * time.Hour, text: "12w"},
		{in: "36h", want: 36 * time.Hour, text: "36h"},
		{in: " 1d ", want: 24 * time.Hour, text: "1d"},
		{in: "90", wantErr: "not a duration"},
		{in: "d", wantErr: "not a duration"},
		{in: "", wantErr: "not a duration"},
		{in: "1.5d", wantErr: "not a duration"},
		{in: "-1d", wantErr: "not a duration"},
		{in: "+1d", wantErr: "not a duration"},
		{in: "90m", wantErr: "not a duration"},
		{in: "0d", wantErr: "not a positive duration"},
		{in: "99999999999999999999w", wantErr: "longer than 100 years"},
		{in: "5300w", wantErr: "longer than 100 years"},
	}
	for _, tc := range tests {
		d, err := ParseDuration(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error %q", tc.in, d, err, tc.wantErr)
			}
			continue
		}
		if err != nil || time.Duration(d) != tc.want || d.String() != tc.text {
			t.Errorf("ParseDuration(%q) = %v (%s), %v; want %v (%s)", tc.in, time.Duration(d), d, err, tc.want, tc.text)
		}
	}
	var back Duration
	if err := json.Unmarshal([]byte(`"12w"`), &back); err != nil || back.String() != "12w" {
		t.Errorf("JSON: %v %v", back, err)
	}
	if b, err := json.Marshal(Duration(90 * 24 * time.Hour)); err != nil || string(b) != `"90d"` {
		t.Errorf("JSON: %s %v", b, err)
	}
}

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"abc", "abc", true},
		{"abc", "abcd", false},
		{"*", "", true},
		{"*", "https://x/y", true},
		{"https://github.com/example/*", "https://github.com/example/app", true},
		{"https://github.com/example/*", "https://github.com/evil/example/app", false},
		{"*/app", "registry.example.com/team/app", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxcyyb", false},
		{"ab*ba", "aba", false},
		{"a**", "a", true},
		{"*x", "", false},
	}
	for _, tc := range tests {
		if got := matchGlob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// TestImageControls checks max_image_age, trusted_base_images,
// required_labels and signature_required, pass and fail.
func TestImageControls(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	key := testKey(t)
	age := Controls{MaxImageAge: Duration(90 * 24 * time.Hour)}
	debian := Controls{TrustedBaseImages: []BaseImage{{Name: "debian:12", Layers: []string{layerA}}, {Name: "distroless", Layers: []string{layerB, layerC}}}}
	labels := Controls{RequiredLabels: map[string]string{"org.opencontainers.image.source": "https://github.com/example/*", "team": ""}}
	signed := Controls{SignatureRequired: &SignatureControl{Keys: []*signature.PublicKey{key}}}
	goodLabels := map[string]string{"org.opencontainers.image.source": "https://github.com/example/app", "team": ""}
	tests := []struct {
		name     string
		controls Controls
		subject  Subject
		want     string // control of the only violation, "" for a pass
		message  string
	}{
		{"age/young", age, Subject{Now: now, Created: now.Add(-89 * 24 * time.Hour)}, "", ""},
		{"age/exactly at the limit", age, Subject{Now: now, Created: now.Add(-90 * 24 * time.Hour)}, "", ""},
		{"age/old", age, Subject{Now: now, Created: now.Add(-91 * 24 * time.Hour)}, ControlImageAge,
			"the image was created 2026-08-24T12:00:00Z, 91 days ago, more than the 90d allowed"},
		{"age/hours", Controls{MaxImageAge: Duration(24 * time.Hour)}, Subject{Now: now, Created: now.Add(-30 * time.Hour)}, ControlImageAge, "30 hours ago, more than the 1d allowed"},
		{"age/no created time", age, Subject{Now: now}, ControlImageAge, "no creation time"},
		{"age/no evaluation time", age, Subject{Created: now}, ControlImageAge, "no evaluation time"},
		{"age/slightly in the future", age, Subject{Now: now, Created: now.Add(5 * time.Minute)}, "", ""},
		{"age/far in the future", age, Subject{Now: now, Created: now.Add(24 * time.Hour)}, ControlImageAge, "is in the future"},
		{"age/reproducible build at the epoch", age, Subject{Now: now, Created: time.Unix(0, 0)}, ControlImageAge, "1970-01-01T00:00:00Z"},

		{"base/first base", debian, Subject{Layers: []string{layerA, layerC}}, "", ""},
		{"base/multi-layer base", debian, Subject{Layers: []string{layerB, layerC, layerA}}, "", ""},
		{"base/is the base itself", debian, Subject{Layers: []string{layerA}}, "", ""},
		{"base/other base", debian, Subject{Layers: []string{layerC, layerA}}, ControlBaseImages,
			"not built on a trusted base image (its first layer is " + layerC + "; trusted: debian:12, distroless)"},
		{"base/base layers not at the bottom", debian, Subject{Layers: []string{layerB, layerA}}, ControlBaseImages, "not built on"},
		{"base/shorter than the base", debian, Subject{Layers: []string{layerB}}, ControlBaseImages, "not built on"},
		{"base/no layers", debian, Subject{}, ControlBaseImages, "layers are unknown"},
		{"base/unresolved entry", Controls{TrustedBaseImages: []BaseImage{{Name: "debian:12"}}}, Subject{Layers: []string{layerA}}, ControlBaseImages,
			"1 base image never resolved to layers: debian:12"},

		{"labels/present", labels, Subject{Labels: goodLabels}, "", ""},
		{"labels/missing", labels, Subject{Labels: map[string]string{"team": "payments"}}, ControlLabels,
			"1 required label missing or not matching: org.opencontainers.image.source is missing"},
		{"labels/wrong value", labels, Subject{Labels: map[string]string{"team": "x", "org.opencontainers.image.source": "https://github.com/evil/app"}}, ControlLabels,
			`org.opencontainers.image.source is "https://github.com/evil/app", want "https://github.com/example/*"`},
		{"labels/none", labels, Subject{}, ControlLabels, "2 required labels missing or not matching"},

		{"signature/valid", signed, Subject{Digest: digest, Signatures: []signature.Verified{{KeyID: key.ID, Digest: digest}}}, "", ""},
		{"signature/unsigned", signed, Subject{Digest: digest, SignatureError: errors.New("image has no cosign signature")}, ControlSignature,
			"no valid signature by a trusted key: image has no cosign signature"},
		{"signature/no result", signed, Subject{Digest: digest}, ControlSignature, "no valid signature by a trusted key"},
		{"signature/another key", signed, Subject{Digest: digest, Signatures: []signature.Verified{{KeyID: "sha256:other", Digest: digest}}}, ControlSignature,
			"signed, but not by a key of the policy: signed by sha256:other"},
		{"signature/another digest", signed, Subject{Digest: digest, Signatures: []signature.Verified{{KeyID: key.ID, Digest: layerA}}}, ControlSignature, "no valid signature"},
		{"signature/digest unknown", signed, Subject{Signatures: []signature.Verified{{KeyID: key.ID, Digest: digest}}}, ControlSignature, "digest is unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Evaluate(&Policy{Name: "p", Controls: tc.controls}, tc.subject)
			if tc.want == "" {
				if !v.Pass || len(v.Violations) != 0 {
					t.Fatalf("verdict %+v, want pass", v)
				}
				return
			}
			if v.Pass || len(v.Violations) != 1 || v.Violations[0].Control != tc.want {
				t.Fatalf("verdict %+v, want one %s violation", v, tc.want)
			}
			if !strings.Contains(v.Violations[0].Message, tc.message) {
				t.Errorf("message %q does not contain %q", v.Violations[0].Message, tc.message)
			}
		})
	}
}

func TestLoadImageControls(t *testing.T) {
	p, err := Load("testdata/image.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := p.Controls
	want := Controls{
		MaxImageAge: Duration(90 * 24 * time.Hour),
		TrustedBaseImages: []BaseImage{
			{Name: "docker.io/library/debian:12", Layers: []string{"sha256:" + strings.Repeat("1", 64)}},
			{Name: "gcr.io/distroless/static-debian12"},
		},
		RequiredLabels: map[string]string{"org.opencontainers.image.source": "https://github.com/example/*", "org.opencontainers.image.revision": ""},
		SignatureRequired: &SignatureControl{
			Keys:       []*signature.PublicKey{testKey(t)},
			Identities: []string{"registry.example.com/team/app"},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("controls = %+v\nwant %+v", c, want)
	}
	if o := c.SignatureRequired.VerifyOptions(); len(o.Keys) != 1 || o.Identities[0] != "registry.example.com/team/app" {
		t.Errorf("VerifyOptions = %+v", o)
	}

	// The server resolves the second base image when the policy is saved.
	var asked []string
	err = p.ResolveBaseImages(func(ref string) ([]string, error) {
		asked = append(asked, ref)
		return []string{layerB, layerC}, nil
	})
	if err != nil || !reflect.DeepEqual(asked, []string{"gcr.io/distroless/static-debian12"}) ||
		!reflect.DeepEqual(p.Controls.TrustedBaseImages[1].Layers, []string{layerB, layerC}) {
		t.Errorf("ResolveBaseImages: %v, asked %q, layers %q", err, asked, p.Controls.TrustedBaseImages[1].Layers)
	}

	// The policy survives a JSON round trip, keys included.
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Policy
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if !reflect.DeepEqual(&back, p) {
		t.Errorf("JSON round trip:\n got %+v\nwant %+v\n%s", back, *p, data)
	}
}

func TestResolveBaseImagesErrors(t *testing.T) {
	tests := []struct {
		name    string
		resolve func(string) ([]string, error)
		want    string
	}{
		{"resolver fails", func(string) ([]string, error) { return nil, errors.New("manifest unknown") }, "trusted_base_images[0] debian:12: manifest unknown"},
		{"bad diffID", func(string) ([]string, error) { return []string{"sha256:xyz"}, nil }, `layers[0]: "sha256:xyz" is not a diffID`},
		{"no layers", func(string) ([]string, error) { return nil, nil }, "has no layers"},
	}
	for _, tc := range tests {
		p := &Policy{Controls: Controls{TrustedBaseImages: []BaseImage{{Name: "debian:12"}}}}
		if err := p.ResolveBaseImages(tc.resolve); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestParseImageControlErrors(t *testing.T) {
	pem, err := os.ReadFile("testdata/cosign.pub")
	if err != nil {
		t.Fatal(err)
	}
	indented := "      - |\n        " + strings.ReplaceAll(strings.TrimSpace(string(pem)), "\n", "\n        ") + "\n"
	tests := []struct {
		name, data string
		want       []string
	}{
		{"age without unit", "controls: {max_image_age: 90}\n", []string{"max_image_age", `"90" is not a duration`}},
		{"age zero", "controls: {max_image_age: 0d}\n", []string{"max_image_age", "not a positive"}},
		{"age a list", "controls: {max_image_age: [1d]}\n", []string{"line 4"}},
		{"base without name", "controls: {trusted_base_images: [{layers: [" + layerA + "]}]}\n", []string{"trusted_base_images[0]", "not an image reference"}},
		{"base bad layer", "controls: {trusted_base_images: [{name: debian, layers: [sha256:12]}]}\n", []string{"trusted_base_images[0] debian: layers[0]", `"sha256:12"`}},
		{"base unknown key", "controls:\n  trusted_base_images:\n    - name: debian\n      digest: sha256:1\n", []string{`unknown key "digest"`, "trusted_base_images[0]", "line 7"}},
		{"labels empty name", "controls: {required_labels: {'': x}}\n", []string{"required_labels", "empty"}},
		{"labels not a map", "controls: {required_labels: [a]}\n", []string{"line 4"}},
		{"signature no keys", "controls: {signature_required: {}}\n", []string{"signature_required: keys is missing"}},
		{"signature unknown key", "controls: {signature_required: {key: x}}\n", []string{`unknown key "key" in signature_required`}},
		{"signature key file in Parse", "controls: {signature_required: {keys: [cosign.pub]}}\n", []string{"keys[0]", `"cosign.pub" is not a PEM public key`, "read from disk"}},
		{"signature bad pem", "controls:\n  signature_required:\n    keys:\n      - \"-----BEGIN PUBLIC KEY-----\\nxx\\n-----END PUBLIC KEY-----\"\n", []string{"keys[0]: key:"}},
		{"signature duplicate key", "controls:\n  signature_required:\n    keys:\n" + indented + indented, []string{"keys[1] is the same key as keys[0]"}},
		{"signature bad identity", "controls:\n  signature_required:\n    keys:\n" + indented + "    identities: ['Bad Repo']\n", []string{"identities[0]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("policy.yaml", []byte(header+tc.data))
			if err == nil {
				t.Fatalf("no error, policy %+v", p)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
	// A PEM key pasted into the policy parses without any file.
	p, err := Parse("policy.yaml", []byte(header+"controls:\n  signature_required:\n    keys:\n"+indented))
	if err != nil || len(p.Controls.SignatureRequired.Keys) != 1 {
		t.Fatalf("pasted key: %v", err)
	}
}

func TestLoadKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		path := dir + "/" + name
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("bad.pub", "not a key")
	write("huge.pub", strings.Repeat("A", signature.MaxKeySize+1))
	for file, want := range map[string]string{
		"missing.pub": "keys[0]: key file missing.pub: open " + dir + "/missing.pub",
		"bad.pub":     "keys[0]: key file bad.pub: no PEM block",
		"huge.pub":    "keys[0]: key file huge.pub:",
	} {
		path := write("p-"+file+".yaml", header+"controls: {signature_required: {keys: ["+file+"]}}\n")
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want %q", file, err, want)
		}
	}
}
