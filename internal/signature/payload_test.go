package signature

import (
	"strings"
	"testing"
)

const testDigest = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"

func TestParsePayload(t *testing.T) {
	valid := `{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/app"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"cosign container image signature"},"optional":{"creator":"ci"}}`
	tests := []struct {
		name, data string
		wantErr    string
	}{
		{"valid", valid, ""},
		{"optional null", strings.Replace(valid, `{"creator":"ci"}`, "null", 1), ""},
		{"no optional", strings.Replace(valid, `,"optional":{"creator":"ci"}`, "", 1), ""},
		{"empty", "", "invalid JSON"},
		{"array", "[]", "not a JSON object"},
		{"junk before key", "x" + valid, "invalid JSON"},
		{"trailing data", valid + "{}", "data follows"},
		{"duplicate key", strings.Replace(valid, `"type":`, `"type":"x","type":`, 1), `"type" appears twice`},
		{"duplicate digest", strings.Replace(valid, `"image":{`, `"image":{"docker-manifest-digest":"sha256:00","docker-manifest-digest":"x",`, 1), "twice"},
		{"unknown top key", strings.Replace(valid, `"optional"`, `"extra"`, 1), `unknown key "extra"`},
		{"unknown critical key", strings.Replace(valid, `"type":`, `"expires":1,"type":`, 1), `unknown field "expires"`},
		{"no critical", `{"optional":{}}`, "no critical section"},
		{"critical null", `{"critical":null}`, "no critical section"},
		{"wrong type", strings.Replace(valid, "cosign container image signature", "atomic container signature", 1), `"atomic container signature"`},
		{"no type", strings.Replace(valid, `,"type":"cosign container image signature"`, "", 1), "no critical.type"},
		{"no digest", strings.Replace(valid, `"image":{"docker-manifest-digest":"`+testDigest+`"}`, `"image":{}`, 1), "docker-manifest-digest"},
		{"bad digest", strings.Replace(valid, testDigest, "sha256:ABC", 1), `"sha256:ABC"`},
		{"uppercase digest", strings.Replace(valid, testDigest, strings.ToUpper(testDigest), 1), "not a sha256"},
		{"no identity", strings.Replace(valid, `"identity":{"docker-reference":"127.0.0.1:5000/app"},`, "", 1), "docker-reference"},
		{"digest a number", strings.Replace(valid, `"`+testDigest+`"`, "1", 1), "critical section"},
		{"optional not object", strings.Replace(valid, `{"creator":"ci"}`, `"x"`, 1), "optional section"},
		{"deep nesting", `{"critical":{},"optional":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "}", "nested deeper"},
		{"too large", `{"optional":"` + strings.Repeat("x", MaxPayloadSize) + `"}`, "more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePayload([]byte(tc.data))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Digest != testDigest || p.DockerReference != "127.0.0.1:5000/app" {
				t.Errorf("payload = %+v", p)
			}
		})
	}
}

func FuzzParsePayload(f *testing.F) {
	f.Add([]byte(`{"critical":{"identity":{"docker-reference":"r/a"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"cosign container image signature"},"optional":null}`))
	f.Add([]byte(`{"critical":{"type":"x","type":"y"}}`))
	f.Add([]byte(`{"critical":{},"optional":[[[[{}]]]]}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePayload(data)
		if err != nil {
			if p != nil {
				t.Fatal("payload returned with an error")
			}
			return
		}
		if !validDigest(p.Digest) {
			t.Fatalf("accepted digest %q", p.Digest)
		}
	})
}
