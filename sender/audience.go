package sender

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
)

// AudienceFormat is the encoding of an audience file.
type AudienceFormat string

// Audience file formats.
const (
	// AudienceCSV: one user ID per line, optionally under a "user_id" header; with several
	// columns, the column named user_id.
	AudienceCSV AudienceFormat = "csv"
	// AudienceNDJSON: one JSON object per line with a "user_id" string.
	AudienceNDJSON AudienceFormat = "ndjson"
	// AudienceJSON: a JSON array of user ID strings, or {"user_ids": [...]}.
	AudienceJSON AudienceFormat = "json"
)

const maxUserID = 256

func parseAudienceFormat(s string) (AudienceFormat, error) {
	switch f := AudienceFormat(strings.ToLower(s)); f {
	case AudienceCSV, AudienceNDJSON, AudienceJSON:
		return f, nil
	case "jsonl":
		return AudienceNDJSON, nil
	}
	return "", fmt.Errorf("unknown format %q (want csv, ndjson or json)", s)
}

// AudienceFormatOf returns the format named by format, or else the one of key's extension.
func AudienceFormatOf(key, format string) (AudienceFormat, error) {
	if format != "" {
		return parseAudienceFormat(format)
	}
	switch ext := strings.ToLower(path.Ext(key)); ext {
	case ".csv", ".txt":
		return AudienceCSV, nil
	case ".ndjson", ".jsonl":
		return AudienceNDJSON, nil
	case ".json":
		return AudienceJSON, nil
	}
	return "", fmt.Errorf("cannot tell the format of %q from its extension: give audience.format", key)
}

func checkUserID(id string) error {
	switch {
	case id == "":
		return errors.New("empty user ID")
	case len(id) > maxUserID:
		return fmt.Errorf("user ID longer than %d bytes", maxUserID)
	case strings.ContainsAny(id, "\x00\r\n"):
		return errors.New("user ID contains a control character")
	}
	return nil
}

// ParseAudience decodes an audience file. Errors are *FieldError naming the line (or, for
// JSON, the array index), so a user can fix the file; nothing is returned on error.
func ParseAudience(data []byte, format AudienceFormat) ([]string, error) {
	switch format {
	case AudienceCSV:
		return parseAudienceCSV(data)
	case AudienceNDJSON:
		return parseAudienceNDJSON(data)
	case AudienceJSON:
		return parseAudienceJSON(data)
	}
	return nil, fmt.Errorf("audience: unknown format %q", format)
}

func lineErr(n int, format string, a ...any) error {
	return fieldErr(fmt.Sprintf("audience line %d", n), format, a...)
}

// maxAudienceLine is the longest line an audience file may have.
const maxAudienceLine = 1 << 20

// parseAudienceCSV copies the file into one string once; the IDs are substrings of it, so
// a million IDs are not a million allocations.
func parseAudienceCSV(data []byte) ([]string, error) {
	ids := make([]string, 0, bytes.Count(data, []byte{'\n'})+1)
	rest := string(data)
	col, ncols := 0, 1
	for n := 1; rest != ""; n++ {
		line, tail, _ := strings.Cut(rest, "\n")
		rest = tail
		if len(line) > maxAudienceLine {
			return nil, fmt.Errorf("audience: read csv: %w", bufio.ErrTooLong)
		}
		line = strings.TrimSpace(line)
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
			fields := strings.Split(line, ",")
			if header := indexOf(fields, "user_id"); header >= 0 {
				col, ncols = header, len(fields)
				continue
			}
			if len(fields) > 1 {
				return nil, lineErr(1, "several columns but no user_id header")
			}
		}
		if line == "" {
			continue
		}
		field := line
		if ncols > 1 || strings.IndexByte(line, ',') >= 0 {
			fields := strings.Split(line, ",")
			if len(fields) != ncols {
				return nil, lineErr(n, "%d columns, want %d", len(fields), ncols)
			}
			field = fields[col]
		}
		id := strings.Trim(strings.TrimSpace(field), `"`)
		if err := checkUserID(id); err != nil {
			return nil, lineErr(n, "%v", err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func indexOf(fields []string, name string) int {
	for i, f := range fields {
		if strings.EqualFold(strings.Trim(strings.TrimSpace(f), `"`), name) {
			return i
		}
	}
	return -1
}

func parseAudienceNDJSON(data []byte) ([]string, error) {
	ids := make([]string, 0, bytes.Count(data, []byte{'\n'})+1)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var rec struct {
			UserID *string `json:"user_id"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, lineErr(n, "not a JSON object: %v", err)
		}
		if rec.UserID == nil {
			return nil, lineErr(n, "no user_id")
		}
		if err := checkUserID(*rec.UserID); err != nil {
			return nil, lineErr(n, "%v", err)
		}
		ids = append(ids, *rec.UserID)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audience: read ndjson: %w", err)
	}
	return ids, nil
}

func parseAudienceJSON(data []byte) ([]string, error) {
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fieldErr("audience", "not JSON: %v", err)
	}
	var ids []string
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		var obj struct {
			UserIDs []string `json:"user_ids"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, fieldErr("audience.user_ids", "%v", err)
		}
		ids = obj.UserIDs
	} else if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, fieldErr("audience", "want an array of user ID strings: %v", err)
	}
	for i, id := range ids {
		if err := checkUserID(id); err != nil {
			return nil, fieldErr(fmt.Sprintf("audience[%d]", i), "%v", err)
		}
	}
	return ids, nil
}
