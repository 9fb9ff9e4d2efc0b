// Package httpjson writes the JSON replies and errors both roles' HTTP APIs
// answer with, and reads their query parameters (SPEC §4: errors are {"error":{"code","message"}}).
package httpjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// MaxBody is the request body limit of both roles (SPEC §6).
const MaxBody = 1 << 20

// ErrorBody is the error reply of SPEC §4.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Write answers status with v as JSON.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Raw answers status with body, JSON stored earlier (an idempotent
// request's first answer), as it is.
func Raw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// Decode reads a JSON body of at most MaxBody bytes into v, refusing
// unknown fields; an empty body leaves v as it is.
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(body) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	return nil
}

// Error answers status with an error body: code is the machine-readable
// reason, the message says what is wrong in words.
func Error(w http.ResponseWriter, status int, code, format string, args ...any) {
	var e ErrorBody
	e.Error.Code, e.Error.Message = code, fmt.Sprintf(format, args...)
	Write(w, status, e)
}

// QueryInt reads the integer query parameter name: def when absent, an
// error naming the parameter and its range when it is not in lo..hi.
func QueryInt(r *http.Request, name string, def, lo, hi int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: %q must be %d..%d", name, s, lo, hi)
	}
	return n, nil
}
