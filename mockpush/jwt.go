package mockpush

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// jwtHeader is the JOSE header of a compact JWS.
type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// jwtClaims holds the claims the mocks read: iss and iat for APNs provider tokens, and the
// OAuth2 JWT-bearer assertion's aud, scope and exp for FCM.
type jwtClaims struct {
	Iss   string      `json:"iss"`
	Sub   string      `json:"sub"`
	Aud   jwtAudience `json:"aud"`
	Scope string      `json:"scope"`
	Iat   int64       `json:"iat"`
	Exp   int64       `json:"exp"`
}

// jwtAudience accepts aud as a string or an array of strings.
type jwtAudience []string

func (a *jwtAudience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = []string{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("aud is neither a string nor a list of strings")
	}
	*a = l
	return nil
}

func (a jwtAudience) has(s string) bool {
	for _, v := range a {
		if v == s {
			return true
		}
	}
	return false
}

// parsedJWT is a decoded compact JWS whose signature is not yet checked.
type parsedJWT struct {
	header  jwtHeader
	claims  jwtClaims
	signed  string // header.payload, the signing input
	sig     []byte
	rawBody []byte
}

// maxJWTLen bounds the tokens the mocks parse.
const maxJWTLen = 8192

// parseJWT decodes a compact JWS (three base64url parts) and its header and claims.
func parseJWT(tok string) (*parsedJWT, error) {
	if len(tok) > maxJWTLen {
		return nil, errors.New("jwt: too long")
	}
	h, rest, ok := strings.Cut(tok, ".")
	if !ok {
		return nil, errors.New("jwt: not three parts")
	}
	p, s, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(s, ".") {
		return nil, errors.New("jwt: not three parts")
	}
	enc := base64.RawURLEncoding
	hb, err := enc.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("jwt: header: %w", err)
	}
	pb, err := enc.DecodeString(p)
	if err != nil {
		return nil, fmt.Errorf("jwt: claims: %w", err)
	}
	sb, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("jwt: signature: %w", err)
	}
	j := &parsedJWT{signed: tok[:len(h)+1+len(p)], sig: sb, rawBody: pb}
	if err := json.Unmarshal(hb, &j.header); err != nil {
		return nil, fmt.Errorf("jwt: header: %w", err)
	}
	if err := json.Unmarshal(pb, &j.claims); err != nil {
		return nil, fmt.Errorf("jwt: claims: %w", err)
	}
	return j, nil
}

// verifyES256 checks an ES256 signature (r||s, 32 bytes each) with pub.
func (j *parsedJWT) verifyES256(pub *ecdsa.PublicKey) error {
	if j.header.Alg != "ES256" {
		return fmt.Errorf("jwt: alg %q, want ES256", j.header.Alg)
	}
	if len(j.sig) != 64 {
		return errors.New("jwt: ES256 signature is not 64 bytes")
	}
	sum := sha256.Sum256([]byte(j.signed))
	r := new(big.Int).SetBytes(j.sig[:32])
	s := new(big.Int).SetBytes(j.sig[32:])
	if !ecdsa.Verify(pub, sum[:], r, s) {
		return errors.New("jwt: bad signature")
	}
	return nil
}

// verifyRS256 checks an RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature with pub.
func (j *parsedJWT) verifyRS256(pub *rsa.PublicKey) error {
	if j.header.Alg != "RS256" {
		return fmt.Errorf("jwt: alg %q, want RS256", j.header.Alg)
	}
	sum := sha256.Sum256([]byte(j.signed))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], j.sig); err != nil {
		return fmt.Errorf("jwt: bad signature: %w", err)
	}
	return nil
}
