package testenv_test

import (
	"github.com/mamorisec/mamori/internal/testenv"
	"testing"
)

func TestBusybox(t *testing.T) {
	img := testenv.BusyboxImage(t)
	id := testenv.RunContainer(t, img, nil, "sleep", "60")
	out := testenv.DockerCLI(t, nil, "exec", id, "echo", "hi")
	if out != "hi" {
		t.Fatal(out)
	}
}
