package awssetup_test

import (
	"testing"

	"github.com/testcontainers/testcontainers-go"
	tclocalstack "github.com/testcontainers/testcontainers-go/modules/localstack"

	"github.com/salvopush/salvo/sender/awsconfig"
	"github.com/salvopush/salvo/sender/awssetup"
)

// Image is the LocalStack release the compose file pins: the last one that runs without an
// auth token.
const Image = "localstack/localstack:4.14.0"

// TestLocalStack runs Setup and the backends against a LocalStack container. It needs a
// Docker engine and skips cleanly where none runs (as on CI, which uses the npm emulators).
func TestLocalStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a container; skipped in -short mode")
	}
	testcontainers.SkipIfProviderIsNotHealthy(t)
	ctx := t.Context()
	c, err := tclocalstack.Run(ctx, Image, testcontainers.WithEnv(map[string]string{"SERVICES": "sqs,s3,dynamodb"}))
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("start %s: %v", Image, err)
	}
	host, err := c.Host(ctx)
	if err != nil {
		t.Fatal(err)
	}
	port, err := c.MappedPort(ctx, "4566/tcp")
	if err != nil {
		t.Fatal(err)
	}
	cfg := awsconfig.Config{
		Region:                "us-east-1",
		Endpoint:              "http://" + host + ":" + port.Port(),
		AccessKeyID:           "test",
		SecretAccessKey:       "test",
		S3PathStyle:           true,
		ChecksumsWhenRequired: true,
	}
	clients, err := cfg.Clients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := awsconfig.DefaultNames()
	if err := awssetup.Setup(ctx, clients, names); err != nil {
		t.Fatal(err)
	}
	exercise(t, clients, names)
}
