package bridge

import (
	"bytes"
	"io"
	"mime/multipart"
	"testing"
)

func TestRenameFormModel(t *testing.T) {
	var in bytes.Buffer
	mw := multipart.NewWriter(&in)
	mw.WriteField("model", "whisper-alias")
	fw, _ := mw.CreateFormFile("file", "a.mp3")
	fw.Write([]byte("ID3\x00binary\r\n--not-a-boundary"))
	mw.WriteField("language", "en")
	mw.Close()
	out := RenameFormModel(in.Bytes(), mw.FormDataContentType(), "whisper-1")
	mr := multipart.NewReader(bytes.NewReader(out), mw.Boundary())
	got := map[string]string{}
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(p)
		got[p.FormName()] = string(b)
	}
	if got["model"] != "whisper-1" || got["file"] != "ID3\x00binary\r\n--not-a-boundary" || got["language"] != "en" {
		t.Errorf("parts %q", got)
	}
	if b := RenameFormModel([]byte("junk"), "multipart/form-data; boundary=x", "m"); string(b) != "junk" {
		t.Errorf("unreadable body changed: %q", b)
	}
}
