package hub

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Kinds of failure. Every error returned by this package that has one of
// these causes matches it with errors.Is.
var (
	// ErrUnauthorized: no token was sent where one is needed, or it was rejected (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrGated: the repository is gated and the token's owner has not accepted its licence.
	ErrGated = errors.New("gated repository")
	// ErrForbidden: the token lacks a permission (403, not gated).
	ErrForbidden = errors.New("forbidden")
	// ErrRepoNotFound: no such repository (or private and not visible with this token).
	ErrRepoNotFound = errors.New("repository not found")
	// ErrRevisionNotFound: the repository has no such branch, tag or commit.
	ErrRevisionNotFound = errors.New("revision not found")
	// ErrEntryNotFound: the revision has no such file.
	ErrEntryNotFound = errors.New("file not found in repository")
	// ErrNotCached: offline (HF_HUB_OFFLINE or hub unreachable) and not in the cache.
	ErrNotCached = errors.New("not in the local cache")
	// ErrCorrupt: a download did not match its expected size or sha256.
	ErrCorrupt = errors.New("corrupt download")
	// ErrNetwork: the hub or CDN could not be reached or the transfer broke.
	ErrNetwork = errors.New("network error")
	// ErrHTTP: any other unexpected HTTP status (5xx, 429, …).
	ErrHTTP = errors.New("unexpected HTTP status")
)

// Error is a failure with its kind (one of the Err* values), a message meant
// for the user, the HTTP status if any, and the underlying cause.
type Error struct {
	Kind   error
	Msg    string
	Status int    // HTTP status, 0 if none
	URL    string // the request URL, if any (never contains the token)
	Err    error  // cause, may be nil
}

func (e *Error) Error() string { return "hub: " + e.text() }

// text is the message without the "hub: " prefix, causes appended.
func (e *Error) text() string {
	var inner *Error
	switch {
	case e.Err == nil:
		return e.Msg
	case errors.As(e.Err, &inner) && e.Err == error(inner):
		return e.Msg + ": " + inner.text()
	}
	return e.Msg + ": " + e.Err.Error()
}

// Unwrap returns the kind and the cause, so errors.Is matches both.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// target names what a request was for, for error messages.
type target struct {
	repoType RepoType
	repoID   string
	revision string
	file     string // "" for repository-level requests
}

func (t target) String() string {
	s := t.repoID
	if t.repoType == Dataset {
		s = "dataset " + s
	}
	if t.revision != "" {
		s += "@" + t.revision
	}
	return s
}

// page is the repository's web page, where gated licences are accepted.
func (c *Client) page(t target) string {
	if t.repoType == Dataset {
		return c.endpoint() + "/datasets/" + t.repoID
	}
	return c.endpoint() + "/" + t.repoID
}

// statusError turns a failed hub response into an Error, reading the hub's
// X-Error-Code and X-Error-Message headers.
func (c *Client) statusError(resp *http.Response, url string, t target) error {
	code := resp.Header.Get("X-Error-Code")
	server := strings.TrimSpace(resp.Header.Get("X-Error-Message"))
	said := ""
	if server != "" {
		said = fmt.Sprintf(" (hub said: %s)", server)
	}
	tokenHint := "no token was sent: set HF_TOKEN to an access token from " + c.endpoint() + "/settings/tokens"
	if c.Token != "" {
		tokenHint = "check that the token in HF_TOKEN has access to it"
	}
	e := &Error{Status: resp.StatusCode, URL: url}
	st := resp.StatusCode
	switch {
	case code == "GatedRepo":
		e.Kind = ErrGated
		if c.Token == "" {
			e.Msg = fmt.Sprintf("%s is a gated repository (%d): set HF_TOKEN to an access token from %s/settings/tokens and accept the licence on %s%s",
				t.repoID, st, c.endpoint(), c.page(t), said)
		} else {
			e.Msg = fmt.Sprintf("%s is a gated repository (%d) and the token's account has no access yet: accept the licence on %s (logged in as the token's owner), then retry%s",
				t.repoID, st, c.page(t), said)
		}
	case code == "RevisionNotFound":
		e.Kind = ErrRevisionNotFound
		e.Msg = fmt.Sprintf("revision %q not found in %s (%d): check the branch, tag or commit%s", t.revision, t.repoID, st, said)
	case code == "EntryNotFound":
		e.Kind = ErrEntryNotFound
		e.Msg = fmt.Sprintf("file %q not found in %s (%d)%s", t.file, t, st, said)
	case code == "RepoNotFound":
		e.Kind = ErrRepoNotFound
		e.Msg = fmt.Sprintf("repository %s not found (%d) at %s: check the id and that it is a %s repo; if it is private, %s%s",
			t.repoID, st, c.endpoint(), t.repoType, tokenHint, said)
	case st == http.StatusUnauthorized:
		e.Kind = ErrUnauthorized
		if c.Token == "" {
			e.Msg = fmt.Sprintf("401 Unauthorized for %s: %s%s", t, tokenHint, said)
		} else {
			e.Msg = fmt.Sprintf("401 Unauthorized for %s: the token in HF_TOKEN was rejected (invalid or expired); create a new one at %s/settings/tokens%s",
				t, c.endpoint(), said)
		}
	case st == http.StatusForbidden:
		e.Kind = ErrForbidden
		e.Msg = fmt.Sprintf("403 Forbidden for %s: the token in HF_TOKEN lacks read permission for this repo (a fine-grained token must list it)%s", t, said)
		if c.Token == "" {
			e.Msg = fmt.Sprintf("403 Forbidden for %s: %s%s", t, tokenHint, said)
		}
	case st == http.StatusNotFound && t.file != "":
		e.Kind = ErrEntryNotFound
		e.Msg = fmt.Sprintf("file %q not found in %s (404)%s", t.file, t, said)
	case st == http.StatusNotFound:
		e.Kind = ErrRepoNotFound
		e.Msg = fmt.Sprintf("%s not found (404) at %s%s", t, c.endpoint(), said)
	default:
		e.Kind = ErrHTTP
		e.Msg = fmt.Sprintf("%s %s returned %s%s", resp.Request.Method, url, resp.Status, said)
	}
	return e
}

// networkError wraps a transport failure, naming the URL.
func networkError(method, u string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) { // it repeats method and URL
		err = ue.Err
	}
	return &Error{
		Kind: ErrNetwork,
		Msg:  fmt.Sprintf("%s %s failed (check the connection and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache only)", method, u),
		URL:  u,
		Err:  err,
	}
}

// redactedError hides the credentials in an error's text (see Client.redact)
// while keeping errors.Is and errors.As working.
type redactedError struct {
	err error
	r   *strings.Replacer
}

func (e *redactedError) Error() string { return e.r.Replace(e.err.Error()) }
func (e *redactedError) Unwrap() error { return e.err }

// redactURL hides the credentials a URL may carry: the user information
// (user:password@) becomes ***@ and the query string (signatures, tokens)
// becomes "?…".
func redactURL(u string) string {
	if p, err := url.Parse(u); err == nil {
		const mark = "bidora-redacted-userinfo"
		hasUser := p.User != nil
		if hasUser {
			p.User = url.User(mark) // url.URL would escape "***"
		}
		query := p.RawQuery != "" || p.ForceQuery
		p.RawQuery, p.ForceQuery = "", false
		s := p.String()
		if hasUser {
			s = strings.Replace(s, mark+"@", "***@", 1)
		}
		if query {
			s += "?…"
		}
		return s
	}
	// Not parseable: cut by hand.
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		hostEnd := strings.IndexAny(rest, "/?#")
		if hostEnd < 0 {
			hostEnd = len(rest)
		}
		if at := strings.LastIndexByte(rest[:hostEnd], '@'); at >= 0 {
			u = u[:i+3] + "***@" + rest[at+1:]
		}
	}
	return redactQuery(u)
}

// secrets lists the strings that must never appear in an error's text: the
// token, the credentials inside HF_ENDPOINT (user:password@, query values such
// as X-Amz-Signature or token), as written and as URL-escaped, longest first.
// The endpoint itself is replaced by its redacted form first, so that messages
// still say which hub was asked.
func (c *Client) secretReplacer() *strings.Replacer {
	var pairs []string
	ep := c.endpoint()
	if safe := redactURL(ep); safe != ep {
		pairs = append(pairs, ep, safe)
	}
	var secrets []string
	add := func(s string, minLen int) {
		if len(s) >= minLen {
			secrets = append(secrets, s, url.QueryEscape(s), url.PathEscape(s))
		}
	}
	add(c.Token, 1)
	if p, err := url.Parse(ep); err == nil {
		if p.User != nil {
			add(p.User.String(), 1)
			add(p.User.Username(), 1)
			if pw, ok := p.User.Password(); ok {
				add(pw, 1)
			}
		}
		for _, vs := range p.Query() {
			for _, v := range vs {
				add(v, 4) // short values (an expiry of 60) are not secrets and would garble the text
			}
		}
	} else if i := strings.Index(ep, "://"); i >= 0 {
		rest := ep[i+3:]
		if at := strings.LastIndexByte(rest[:max(strings.IndexAny(rest, "/?#"), 0)], '@'); at >= 0 {
			add(rest[:at], 1)
		}
	}
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range slices.Compact(secrets) {
		pairs = append(pairs, s, "***")
	}
	if len(pairs) == 0 {
		return nil
	}
	return strings.NewReplacer(pairs...)
}

// redact is applied to every error a public method returns: the token and the
// credentials of HF_ENDPOINT are replaced by *** in its text and in the URL
// fields of the *Error values it wraps. It is a last line of defence: URLs are
// redacted where messages are built.
func (c *Client) redact(err error) error {
	if err == nil {
		return nil
	}
	r := c.secretReplacer()
	if r == nil {
		return err
	}
	scrubURLs(err, r, 0)
	if r.Replace(err.Error()) == err.Error() {
		return err
	}
	return &redactedError{err: err, r: r}
}

// scrubURLs redacts the URL field of every *Error in err's tree.
func scrubURLs(err error, r *strings.Replacer, depth int) {
	if err == nil || depth > 32 {
		return
	}
	if e, ok := err.(*Error); ok {
		e.URL = r.Replace(redactURL(e.URL))
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, inner := range u.Unwrap() {
			scrubURLs(inner, r, depth+1)
		}
	case interface{ Unwrap() error }:
		scrubURLs(u.Unwrap(), r, depth+1)
	}
}

// shouldFallBack reports whether a failed metadata request may be answered
// from the cache instead: network failures, server errors and access errors
// (as huggingface_hub does), but not a missing revision or file.
func shouldFallBack(err error) bool {
	return !errors.Is(err, ErrRevisionNotFound) && !errors.Is(err, ErrEntryNotFound) && !errors.Is(err, ErrCorrupt)
}
