package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/salvopush/salvo/sender"
)

// MinPartSize is the smallest part S3 accepts in a multipart upload (all parts but the last).
const MinPartSize = 5 << 20

// Options tune a Store; the zero value is ready to use.
type Options struct {
	// PartSize is the size of multipart upload parts and of ranged GETs (0: 8 MiB; at least
	// MinPartSize).
	PartSize int64
	// MultipartThreshold is the object size from which Put uploads in parts (0: 16 MiB).
	MultipartThreshold int64
	// Concurrency bounds the parts or ranges one Put or Get moves at once (0: 8).
	Concurrency int
	// ListPageSize is the MaxKeys of each ListObjectsV2 page (0: 1000, the S3 maximum).
	ListPageSize int32
}

// Validate reports the first bad field.
func (o Options) Validate() error {
	switch {
	case o.PartSize != 0 && o.PartSize < MinPartSize:
		return fmt.Errorf("s3: Options.PartSize %d is under the %d-byte minimum", o.PartSize, MinPartSize)
	case o.MultipartThreshold < 0:
		return fmt.Errorf("s3: Options.MultipartThreshold %d is negative", o.MultipartThreshold)
	case o.Concurrency < 0:
		return fmt.Errorf("s3: Options.Concurrency %d is negative", o.Concurrency)
	case o.ListPageSize < 0 || o.ListPageSize > 1000:
		return fmt.Errorf("s3: Options.ListPageSize %d is outside 0..1000", o.ListPageSize)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.PartSize == 0 {
		o.PartSize = 8 << 20
	}
	if o.MultipartThreshold == 0 {
		o.MultipartThreshold = 16 << 20
	}
	if o.Concurrency == 0 {
		o.Concurrency = 8
	}
	if o.ListPageSize == 0 {
		o.ListPageSize = 1000
	}
	return o
}

// Store keeps objects in one S3 bucket; it implements sender.ObjectStore. It is safe for
// concurrent use and holds nothing that needs closing.
type Store struct {
	client *awss3.Client
	bucket string
	opts   Options
}

var _ sender.ObjectStore = (*Store)(nil)

// New returns a Store over bucket; it makes no call (the bucket must exist: CreateBucket or
// the setup command makes it). For emulators the client must use path-style addressing.
func New(client *awss3.Client, bucket string, opts Options) (*Store, error) {
	if bucket == "" {
		return nil, errors.New("s3: bucket name is empty")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Store{client: client, bucket: bucket, opts: opts.withDefaults()}, nil
}

// Bucket returns the bucket name.
func (s *Store) Bucket() string { return s.bucket }

// Put writes data under key, replacing any previous object. Objects of MultipartThreshold
// bytes or more go up as a multipart upload of PartSize parts, Concurrency at once; a failed
// multipart upload is aborted. Put does not keep or modify data.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if int64(len(data)) < s.opts.MultipartThreshold {
		_, err := s.client.PutObject(ctx, &awss3.PutObjectInput{
			Bucket:        aws.String(s.bucket),
			Key:           aws.String(key),
			Body:          bytes.NewReader(data),
			ContentLength: aws.Int64(int64(len(data))),
		})
		if err != nil {
			return fmt.Errorf("s3: put %q: %w", key, err)
		}
		return nil
	}
	if err := s.putMultipart(ctx, key, data); err != nil {
		return fmt.Errorf("s3: put %q (multipart): %w", key, err)
	}
	return nil
}

// PutStream writes what r yields under key without holding more than one part in memory:
// an object under MultipartThreshold is one PutObject, a larger one a multipart upload of
// PartSize parts sent one after another (aborted if anything fails). It returns the bytes
// written.
func (s *Store) PutStream(ctx context.Context, key string, r io.Reader) (int64, error) {
	first := make([]byte, s.opts.MultipartThreshold)
	n, err := io.ReadFull(r, first)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return int64(n), s.Put(ctx, key, first[:n])
	}
	if err != nil {
		return int64(n), fmt.Errorf("s3: put %q: read: %w", key, err)
	}
	total, err := s.putStream(ctx, key, io.MultiReader(bytes.NewReader(first), r))
	if err != nil {
		return total, fmt.Errorf("s3: put %q (multipart): %w", key, err)
	}
	return total, nil
}

func (s *Store) putStream(ctx context.Context, key string, r io.Reader) (total int64, err error) {
	created, err := s.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return 0, err
	}
	id := created.UploadId
	defer func() {
		if err != nil {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_, aerr := s.client.AbortMultipartUpload(actx, &awss3.AbortMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: id})
			if aerr != nil {
				err = errors.Join(err, fmt.Errorf("abort upload: %w", aerr))
			}
		}
	}()
	buf := make([]byte, s.opts.PartSize)
	var parts []types.CompletedPart
	for num := int32(1); ; num++ {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if num > MaxParts {
				return total, fmt.Errorf("more than %d parts of %d bytes", MaxParts, len(buf))
			}
			out, err := s.client.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String(s.bucket), Key: aws.String(key),
				UploadId: id, PartNumber: aws.Int32(num), Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n))})
			if err != nil {
				return total, fmt.Errorf("part %d: %w", num, err)
			}
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(num), ETag: aws.String(strings.Trim(aws.ToString(out.ETag), `"`))})
			total += int64(n)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return total, fmt.Errorf("read: %w", rerr)
		}
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(key),
		UploadId: id, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	return total, err
}

// MaxParts is the most parts S3 takes in one multipart upload; Put grows the part size of
// objects that would need more.
const MaxParts = 10000

// putMultipart uploads data in parts of PartSize (grown if data needs more than MaxParts),
// Concurrency at once, each part a slice of data (no copy), and aborts the upload if any
// step fails so that no orphaned parts are billed.
//
// (It calls the multipart API directly: feature/s3/manager is deprecated, and its successor
// feature/s3/transfermanager is pre-1.0, logs through the standard logger on failure and
// copies every part into a buffer of its own.)
func (s *Store) putMultipart(ctx context.Context, key string, data []byte) (err error) {
	size := int64(len(data))
	part := max(s.opts.PartSize, (size+MaxParts-1)/MaxParts)
	created, err := s.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	id := created.UploadId
	defer func() {
		if err != nil {
			// Abort on a context of its own: the caller's may be what failed.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_, aerr := s.client.AbortMultipartUpload(actx, &awss3.AbortMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: id})
			if aerr != nil {
				err = errors.Join(err, fmt.Errorf("abort upload: %w", aerr))
			}
		}
	}()
	n := int((size + part - 1) / part)
	parts := make([]types.CompletedPart, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.Concurrency)
	for i := range n {
		g.Go(func() error {
			lo := int64(i) * part
			hi := min(lo+part, size)
			num := aws.Int32(int32(i + 1))
			out, err := s.client.UploadPart(gctx, &awss3.UploadPartInput{
				Bucket:        aws.String(s.bucket),
				Key:           aws.String(key),
				UploadId:      id,
				PartNumber:    num,
				Body:          bytes.NewReader(data[lo:hi]),
				ContentLength: aws.Int64(hi - lo),
			})
			if err != nil {
				return fmt.Errorf("part %d: %w", i+1, err)
			}
			// S3 takes the ETag with or without its quotes; some emulators only without.
			parts[i] = types.CompletedPart{PartNumber: num, ETag: aws.String(strings.Trim(aws.ToString(out.ETag), `"`))}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.bucket),
		Key:             aws.String(key),
		UploadId:        id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	return err
}

// Get reads the object at key; a missing key gives an error wrapping sender.ErrNotFound.
// It asks for the size first (HeadObject); an object larger than PartSize is fetched as
// PartSize ranges, Concurrency at once, into one buffer, each range pinned to the ETag the
// size came with, so that an object replaced mid-read is read again (up to 3 times) instead
// of mixing versions.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		data, err := s.get(ctx, key)
		var re *awshttp.ResponseError
		if err != nil && attempt < 3 && errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed {
			continue // replaced between HeadObject and GetObject
		}
		return data, err
	}
}

// get is one try of Get.
func (s *Store) get(ctx context.Context, key string) ([]byte, error) {
	head, err := s.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	size := aws.ToInt64(head.ContentLength)
	etag := head.ETag
	if size <= s.opts.PartSize {
		buf := make([]byte, size)
		if err := s.getRange(ctx, key, etag, buf, 0, size, false); err != nil {
			return nil, err
		}
		return buf, nil
	}
	buf := make([]byte, size)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.Concurrency)
	for off := int64(0); off < size; off += s.opts.PartSize {
		end := min(off+s.opts.PartSize, size)
		g.Go(func() error { return s.getRange(gctx, key, etag, buf[off:end], off, end, true) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return buf, nil
}

// getRange reads bytes [off, end) of the object into dst (len(dst) == end-off). Without
// ranged it reads the whole object, which must be exactly len(dst) bytes.
func (s *Store) getRange(ctx context.Context, key string, etag *string, dst []byte, off, end int64, ranged bool) error {
	in := &awss3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key), IfMatch: etag}
	if ranged {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, end-1))
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return s.wrap("get", key, err)
	}
	defer out.Body.Close()
	if _, err := io.ReadFull(out.Body, dst); err != nil {
		return fmt.Errorf("s3: get %q bytes %d-%d: %w", key, off, end-1, err)
	}
	// The object must end where the size said; more bytes mean it changed under us.
	var one [1]byte
	if n, _ := out.Body.Read(one[:]); n > 0 {
		return fmt.Errorf("s3: get %q bytes %d-%d: longer than announced (object replaced?)", key, off, end-1)
	}
	return nil
}

// List returns the keys that start with prefix, sorted, following ListObjectsV2 pages of
// ListPageSize keys.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	p := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{
		Bucket:  aws.String(s.bucket),
		Prefix:  aws.String(prefix),
		MaxKeys: aws.Int32(s.opts.ListPageSize),
	})
	var keys []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3: list %q: %w", prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// wrap names the operation and key, and maps S3's "no such key" answers to
// sender.ErrNotFound.
func (s *Store) wrap(op, key string, err error) error {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return fmt.Errorf("s3: %s %q in bucket %s: %w", op, key, s.bucket, sender.ErrNotFound)
	}
	return fmt.Errorf("s3: %s %q: %w", op, key, err)
}

// CreateBucket creates bucket if it does not exist yet (an existing bucket this account owns
// is not an error). It is for the setup command. Outside us-east-1 the bucket is created in
// the client's region.
func CreateBucket(ctx context.Context, client *awss3.Client, bucket string) error {
	in := &awss3.CreateBucketInput{Bucket: aws.String(bucket)}
	if r := client.Options().Region; r != "" && r != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(r)}
	}
	_, err := client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("s3: create bucket %q: %w", bucket, err)
	}
	return nil
}
