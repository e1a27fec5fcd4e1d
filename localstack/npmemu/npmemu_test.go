package npmemu_test

import (
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/salvopush/salvo/localstack/npmemu"
)

func TestMain(m *testing.M) { os.Exit(npmemu.Run(m)) }

// TestStartAnswers checks that every emulated service answers a harmless call.
func TestStartAnswers(t *testing.T) {
	ep := npmemu.Start(t)
	c := ep.Clients(t)
	ctx := t.Context()
	if _, err := c.SQS.ListQueues(ctx, &sqs.ListQueuesInput{}); err != nil {
		t.Errorf("sqs: %v", err)
	}
	if _, err := c.S3.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		t.Errorf("s3: %v", err)
	}
	if _, err := c.DynamoDB.ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
		t.Errorf("dynamodb: %v", err)
	}
}

// TestStartShares checks that tests of one binary share the emulators Run started.
func TestStartShares(t *testing.T) {
	a, b := npmemu.Start(t), npmemu.Start(t)
	if a != b {
		t.Errorf("two Starts gave %+v and %+v, want the shared pair", a, b)
	}
}

// TestEnv checks that Env names every endpoint.
func TestEnv(t *testing.T) {
	ep := npmemu.Endpoints{SQS: "http://127.0.0.1:1", S3: "http://127.0.0.1:1", DynamoDB: "http://127.0.0.1:2"}
	want := map[string]bool{
		"AWS_ENDPOINT_URL_SQS=http://127.0.0.1:1":      true,
		"AWS_ENDPOINT_URL_S3=http://127.0.0.1:1":       true,
		"AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:2": true,
	}
	for _, kv := range ep.Env() {
		delete(want, kv)
	}
	if len(want) > 0 {
		t.Errorf("Env lacks %v", want)
	}
}
