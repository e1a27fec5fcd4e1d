package awsconfig_test

import (
	"flag"
	"testing"

	"github.com/salvopush/salvo/sender/awsconfig"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want awsconfig.Config
	}{
		// Nothing set: real AWS in the default region, default credential chain.
		{"empty", nil, awsconfig.Config{Region: awsconfig.DefaultRegion}},
		// AWS_REGION wins over AWS_DEFAULT_REGION.
		{"region", map[string]string{"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2"}, awsconfig.Config{Region: "eu-west-1"}},
		// LocalStack: one endpoint means an emulator, so path style and lenient checksums.
		{"one endpoint", map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
			awsconfig.Config{Region: awsconfig.DefaultRegion, Endpoint: "http://127.0.0.1:4566", AccessKeyID: "test", SecretAccessKey: "test", S3PathStyle: true, ChecksumsWhenRequired: true}},
		// Only DynamoDB overridden: S3 stays virtual-hosted.
		{"dynamodb only", map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000"},
			awsconfig.Config{Region: awsconfig.DefaultRegion, DynamoDBEndpoint: "http://127.0.0.1:8000", ChecksumsWhenRequired: true}},
		// Path style can be forced off for an emulator with wildcard DNS.
		{"path style off", map[string]string{"AWS_ENDPOINT_URL_S3": "http://s3.local:4566", awsconfig.EnvS3PathStyle: "false"},
			awsconfig.Config{Region: awsconfig.DefaultRegion, S3Endpoint: "http://s3.local:4566", ChecksumsWhenRequired: true}},
	}
	for _, tt := range tests {
		if got := awsconfig.FromEnv(env(tt.env)); got != tt.want {
			t.Errorf("%s: FromEnv = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestFlagsOverrideEnv(t *testing.T) {
	c := awsconfig.FromEnv(env(map[string]string{"AWS_REGION": "eu-west-1"}))
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"-aws-region", "ap-south-1", "-aws-endpoint-sqs", "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if c.Region != "ap-south-1" || c.SQSEndpoint != "http://127.0.0.1:1" {
		t.Errorf("after flags: %+v", c)
	}
}

func TestValidate(t *testing.T) {
	ok := awsconfig.Config{Region: "us-east-1"}
	tests := []struct {
		name   string
		mutate func(*awsconfig.Config)
		valid  bool
	}{
		// The zero value plus a region is real AWS.
		{"region only", func(*awsconfig.Config) {}, true},
		// A region is required.
		{"no region", func(c *awsconfig.Config) { c.Region = "" }, false},
		// Endpoints are http(s) URLs.
		{"bad endpoint", func(c *awsconfig.Config) { c.Endpoint = "localhost:4566" }, false},
		// Half of a static key pair is a mistake.
		{"half credentials", func(c *awsconfig.Config) { c.AccessKeyID = "test" }, false},
	}
	for _, tt := range tests {
		c := ok
		tt.mutate(&c)
		if err := c.Validate(); (err == nil) != tt.valid {
			t.Errorf("%s: Validate() = %v, want valid=%v", tt.name, err, tt.valid)
		}
	}
}

func TestNamesValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*awsconfig.Names)
		valid  bool
	}{
		// The defaults are valid.
		{"defaults", func(*awsconfig.Names) {}, true},
		// The range queue must be FIFO for deduplication.
		{"range not fifo", func(n *awsconfig.Names) { n.RangeQueue = "ranges" }, false},
		// The batch queue must be standard (FIFO would cap throughput).
		{"batch fifo", func(n *awsconfig.Names) { n.BatchQueue = "batches.fifo" }, false},
		// Every name is needed.
		{"no bucket", func(n *awsconfig.Names) { n.Bucket = "" }, false},
	}
	for _, tt := range tests {
		n := awsconfig.DefaultNames()
		tt.mutate(&n)
		if err := n.Validate(); (err == nil) != tt.valid {
			t.Errorf("%s: Validate() = %v, want valid=%v", tt.name, err, tt.valid)
		}
	}
}
