package auth

import (
	"fmt"
	"testing"
)

// BenchmarkHashPassword measures the time of one password hash with
// DefaultParams and with neighbouring parameter choices, to document the
// choice of DefaultParams.
func BenchmarkHashPassword(b *testing.B) {
	for _, p := range []Params{
		DefaultParams,
		{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}, // OWASP minimum
		{Memory: 64 * 1024, Iterations: 3, Parallelism: 4, SaltLen: 16, KeyLen: 32}, // RFC 9106 option 2
		{Memory: 64 * 1024, Iterations: 3, Parallelism: 1, SaltLen: 16, KeyLen: 32},
	} {
		b.Run(fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Iterations, p.Parallelism), func(b *testing.B) {
			for b.Loop() {
				if _, err := HashPassword("correct horse battery", p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
