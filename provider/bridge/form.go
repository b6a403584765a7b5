package bridge

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
)

// RenameFormModel is a multipart upload with its model field set to name,
// the other parts copied byte for byte under the same boundary; the body
// itself when it has no model field or cannot be read.
func RenameFormModel(body []byte, contentType, name string) []byte {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["boundary"] == "" {
		return body
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var out bytes.Buffer
	out.Grow(len(body) + len(name))
	mw := multipart.NewWriter(&out)
	if mw.SetBoundary(params["boundary"]) != nil {
		return body
	}
	renamed := false
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return body
		}
		w, err := mw.CreatePart(p.Header)
		if err != nil {
			return body
		}
		if p.FormName() == "model" {
			io.WriteString(w, name)
			renamed = true
			continue
		}
		if _, err := io.Copy(w, p); err != nil {
			return body
		}
	}
	if !renamed || mw.Close() != nil {
		return body
	}
	return out.Bytes()
}
