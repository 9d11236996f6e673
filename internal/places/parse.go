package places

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Parse decodes a legacy Nearby Search response body. Results and
// html_attributions are kept as raw JSON, and top-level members that
// Response has no field for are kept verbatim in Extra. The body must be one
// JSON object with a string "status"; "results" must be an array of objects
// (null or missing means none).
func Parse(body []byte) (*Response, error) {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("places: response is not a JSON object")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, fmt.Errorf("places: bad response JSON: %w", err)
	}
	r := new(Response)
	for name, raw := range top {
		var err error
		switch name {
		case "status":
			err = json.Unmarshal(raw, &r.Status)
		case "error_message":
			err = json.Unmarshal(raw, &r.ErrorMessage)
		case "next_page_token":
			err = json.Unmarshal(raw, &r.NextPageToken)
		case "html_attributions":
			err = json.Unmarshal(raw, &r.HTMLAttributions)
		case "results":
			r.Results, err = parseResults(raw)
		default:
			if r.Extra == nil {
				r.Extra = make(map[string]json.RawMessage)
			}
			r.Extra[name] = raw
		}
		if err != nil {
			return nil, fmt.Errorf("places: bad %q in response: %w", name, err)
		}
	}
	if _, ok := top["status"]; !ok || r.Status == "" {
		return nil, errors.New(`places: response has no "status"`)
	}
	return r, nil
}

// parseResults decodes the results array into compacted raw objects that
// share one buffer: a cached response then holds no indentation, and Render
// has less to scan.
func parseResults(raw []byte) ([]json.RawMessage, error) {
	var results []json.RawMessage
	if err := json.Unmarshal(raw, &results); err != nil {
		return nil, err
	}
	buf := bytes.NewBuffer(make([]byte, 0, len(raw)))
	ends := make([]int, len(results))
	for i, res := range results {
		if t := bytes.TrimLeft(res, " \t\r\n"); len(t) == 0 || t[0] != '{' {
			return nil, fmt.Errorf("result %d is not an object", i)
		}
		if err := json.Compact(buf, res); err != nil {
			return nil, err
		}
		ends[i] = buf.Len()
	}
	b, start := buf.Bytes(), 0
	for i, end := range ends {
		results[i] = json.RawMessage(b[start:end:end])
		start = end
	}
	return results, nil
}
