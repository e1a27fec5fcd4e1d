package sender

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
)

// A resolved campaign is stored as a manifest plus shards. Recipients (one per device, the
// control group left out) are numbered 0..N-1 and sorted into segments, each one platform,
// one app and one variant, so that a contiguous index range never mixes messages. Shard i
// holds the tokens of a contiguous index range.
//
// Shard layout (little endian):
//
//	magic "SLV1" | u32 start | u32 count | u16 length[count] | token bytes | u32 CRC-32C of all before
const shardMagic = "SLV1"

// DefaultShardSize is the number of recipients per shard.
const DefaultShardSize = 1 << 18

// Manifest describes a resolved campaign.
type Manifest struct {
	Campaign   string         `json:"campaign"`
	Recipients uint32         `json:"recipients"` // devices to push (control left out)
	Segments   []Segment      `json:"segments"`
	Shards     []ShardInfo    `json:"shards"`
	Counts     ManifestCounts `json:"counts"`
}

// Segment is a contiguous run of recipients sharing platform, app and variant.
type Segment struct {
	Platform Platform `json:"platform"` // "ios" or "android" in JSON
	App      string   `json:"app"`      // APNs topic or FCM project
	Variant  int      `json:"variant"`
	Start    uint32   `json:"start"`
	Count    uint32   `json:"count"`
}

// ShardInfo locates one shard object and lets a loader check it.
type ShardInfo struct {
	Key    string `json:"key"`
	Start  uint32 `json:"start"`
	Count  uint32 `json:"count"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// ManifestCounts are the resolution's totals.
type ManifestCounts struct {
	Users             int            `json:"users"`              // distinct user IDs in the audience
	UnknownUsers      int            `json:"unknown_users"`      // not in the registry
	DuplicatesRemoved int            `json:"duplicates_removed"` // repeated user IDs dropped
	ControlUsers      int            `json:"control_users"`
	ControlDevices    int            `json:"control_devices"`
	ControlIOS        int            `json:"control_ios"`
	ControlAndroid    int            `json:"control_android"`
	IOS               int            `json:"ios"`
	Android           int            `json:"android"`
	ByVariant         map[string]int `json:"by_variant"` // recipients per variant name
	TokenBytes        int64          `json:"token_bytes"`
	// NoMessageIOS and NoMessageAndroid count devices left out because the user's variant
	// has no message for their platform; NoMessageSample names some of those users.
	NoMessageIOS     int      `json:"no_message_ios,omitempty"`
	NoMessageAndroid int      `json:"no_message_android,omitempty"`
	NoMessageSample  []string `json:"no_message_sample,omitempty"`
}

// ManifestKey is the object key of a campaign's manifest.
func ManifestKey(campaign string) string { return "campaigns/" + campaign + "/manifest.json" }

func shardKey(campaign string, i int) string {
	return fmt.Sprintf("campaigns/%s/shards/%05d.bin", campaign, i)
}

// encodeShard lays out one shard from its tokens, given as runs end to end, in dst's
// memory when it is large enough (else in a new buffer).
func encodeShard(dst []byte, start uint32, parts []segBuf) []byte {
	count, nbytes := 0, 0
	for _, p := range parts {
		count += len(p.lens)
		nbytes += len(p.tokens)
	}
	size := 12 + 2*count + nbytes + 4
	if cap(dst) < size {
		dst = make([]byte, 0, size)
	}
	b := dst[:12+2*count]
	copy(b, shardMagic)
	binary.LittleEndian.PutUint32(b[4:], start)
	binary.LittleEndian.PutUint32(b[8:], uint32(count))
	at := 12
	for _, p := range parts {
		for _, n := range p.lens {
			binary.LittleEndian.PutUint16(b[at:], n)
			at += 2
		}
	}
	for _, p := range parts {
		b = append(b, p.tokens...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// decodeShard checks a shard and returns its recipients' tokens in place: the token
// bytes stay in b, which the result keeps.
func decodeShard(b []byte, want ShardInfo) (shardData, error) {
	if len(b) < 16 || string(b[:4]) != shardMagic {
		return shardData{}, errors.New("not a shard (bad magic)")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return shardData{}, errors.New("checksum mismatch")
	}
	start, count := binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])
	if start != want.Start || count != want.Count {
		return shardData{}, fmt.Errorf("holds [%d,+%d), manifest says [%d,+%d)", start, count, want.Start, want.Count)
	}
	lens := body[12:]
	if uint64(len(lens)) < 2*uint64(count) {
		return shardData{}, errors.New("truncated length table")
	}
	data := lens[2*count:]
	ends := make([]uint32, count)
	off := 0
	for i := range ends {
		n := int(binary.LittleEndian.Uint16(lens[2*i:]))
		if off+n > len(data) {
			return shardData{}, fmt.Errorf("token %d runs past the end", i)
		}
		off += n
		ends[i] = uint32(off)
	}
	if off != len(data) {
		return shardData{}, fmt.Errorf("%d trailing bytes", len(data)-off)
	}
	return shardData{start: start, tokens: data[:off:off], ends: ends, held: int64(cap(b))}, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// SegmentIndex returns the index in m.Segments of the segment holding recipient i, or -1
// (segments are sorted by Start and do not overlap).
func (m *Manifest) SegmentIndex(i uint32) int {
	segs := m.Segments
	lo, hi := 0, len(segs)
	for lo < hi {
		mid := (lo + hi) / 2
		switch s := segs[mid]; {
		case i < s.Start:
			hi = mid
		case i >= s.Start+s.Count:
			lo = mid + 1
		default:
			return mid
		}
	}
	return -1
}
