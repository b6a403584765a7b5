package dialect

import "fmt"

// ParseRequest reads a request in a caller's dialect.
func ParseRequest(caller string, body []byte) (*Request, error) {
	switch caller {
	case Chat:
		return ParseChatRequest(body)
	case Responses:
		return ParseResponsesRequest(body)
	case Messages:
		return ParseMessagesRequest(body)
	}
	return nil, fmt.Errorf("unknown dialect %q", caller)
}

// AppendRequest writes req for a provider wire and its upstream model.
// maxTokens is the model's configured limit, for wires that require one.
func AppendRequest(b []byte, wire string, req *Request, model string, maxTokens int64) []byte {
	switch wire {
	case WireAnthropic:
		return AppendMessagesRequest(b, req, model, maxTokens)
	case WireGemini:
		return AppendGeminiRequest(b, req)
	}
	return AppendChatRequest(b, req, model)
}

// ParseResponse reads a provider wire's non-streaming answer.
func ParseResponse(wire string, body []byte) (*Response, error) {
	switch wire {
	case WireAnthropic:
		return ParseMessagesResponse(body)
	case WireGemini:
		return ParseGeminiResponse(body)
	}
	return ParseChatResponse(body)
}

// AppendResponse writes resp in a caller's dialect, answering for model.
func AppendResponse(b []byte, caller string, resp *Response, model string, created int64) []byte {
	switch caller {
	case Messages:
		return AppendMessagesResponse(b, resp, model)
	case Responses:
		return AppendResponsesResponse(b, resp, model, created)
	}
	return AppendChatResponse(b, resp, model, created)
}

// WireOf is the wire a caller dialect is when relayed untranslated.
func WireOf(caller string) string {
	if caller == Messages {
		return WireAnthropic
	}
	return WireOpenAI
}
