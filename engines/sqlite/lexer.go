package sqlite

import (
	"strings"
	"unicode/utf8"
)

// The scanner in this file follows SQLite's tokenizer closely enough to
// skip whitespace, comments and quoted text. It does not decide where a
// statement of a job ends, because SQLite does (see prepareNext). It
// recognizes `show tables`, estimates the number of statements for
// progress reports, finds whether a PRAGMA statement has an argument, and
// shortens statements for the job log.

type tokenKind int

const (
	tokEnd    tokenKind = iota
	tokSpace            // whitespace, -- comment or /* comment */
	tokWord             // keyword, identifier or number
	tokQuoted           // "identifier", `identifier` or [identifier]
	tokString           // 'string'
	tokSemi             // ;
	tokOther            // any other byte
)

// nextToken returns the kind of the token that starts at s[i] and the
// index after it. An unterminated comment, string or quoted identifier
// runs to the end of s, as in SQLite.
func nextToken(s string, i int) (tokenKind, int) {
	if i >= len(s) {
		return tokEnd, len(s)
	}
	c := s[i]
	switch {
	case isSpace(c):
		j := i + 1
		for j < len(s) && isSpace(s[j]) {
			j++
		}
		return tokSpace, j
	case strings.HasPrefix(s[i:], "--"):
		return tokSpace, indexAfter(s, i+2, "\n")
	case strings.HasPrefix(s[i:], "/*"):
		return tokSpace, indexAfter(s, i+2, "*/")
	case c == '\'':
		// A doubled quote inside a string scans as two strings that
		// touch, which ends at the same place.
		return tokString, indexAfter(s, i+1, "'")
	case c == '"' || c == '`':
		return tokQuoted, indexAfter(s, i+1, string(c))
	case c == '[':
		return tokQuoted, indexAfter(s, i+1, "]")
	case c == ';':
		return tokSemi, i + 1
	case isWordByte(c):
		j := i + 1
		for j < len(s) && isWordByte(s[j]) {
			j++
		}
		return tokWord, j
	}
	return tokOther, i + 1
}

// indexAfter returns the index after the first end in s[from:], or len(s).
func indexAfter(s string, from int, end string) int {
	j := strings.Index(s[from:], end)
	if j < 0 {
		return len(s)
	}
	return from + j + len(end)
}

// isSpace reports the bytes SQLite treats as whitespace.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

// isWordByte reports the bytes of keywords, identifiers and numbers. SQLite
// treats every byte of a multi-byte UTF-8 character as part of a word.
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '$' || c >= utf8.RuneSelf
}

// skipSpace returns the index of the first byte at or after i that is not
// whitespace or part of a comment.
func skipSpace(s string, i int) int {
	for {
		k, j := nextToken(s, i)
		if k != tokSpace {
			return i
		}
		i = j
	}
}

// wordAt returns the word that starts at s[i], or "" when s[i] starts
// another kind of token, and the index after the token.
func wordAt(s string, i int) (string, int) {
	k, j := nextToken(s, i)
	if k != tokWord {
		return "", j
	}
	return s[i:j], j
}

// matchShowTables reports whether s, after leading whitespace and
// comments, starts with the words SHOW TABLES in any case, and returns the
// length of the statement. The statement ends after a ';', after the end
// of the line (which may hold a -- comment) or at the end of s. Anything
// else on the line makes it no match, so SQLite reports the error.
func matchShowTables(s string) (int, bool) {
	i := skipSpace(s, 0)
	word, j := wordAt(s, i)
	if !strings.EqualFold(word, "show") {
		return 0, false
	}
	if k, _ := nextToken(s, j); k != tokSpace {
		return 0, false
	}
	word, i = wordAt(s, skipSpace(s, j))
	if !strings.EqualFold(word, "tables") {
		return 0, false
	}

	for {
		k, j := nextToken(s, i)
		switch k {
		case tokEnd:
			return i, true
		case tokSemi:
			return j, true
		case tokSpace:
			// Whitespace and -- comments end the statement at a newline,
			// but a block comment may span lines without ending it.
			if n := strings.IndexByte(s[i:j], '\n'); n >= 0 && s[i] != '/' {
				return i + n + 1, true
			}
			i = j
		default:
			return 0, false
		}
	}
}

// countStatements estimates the number of statements of a script for
// progress reports: statements end at a ';' outside quotes and comments,
// except inside the body of CREATE TRIGGER, which ends at END followed by
// ';'. It counts SHOW TABLES as matchShowTables does. The estimate can be
// wrong (a CASE ... END; inside a trigger body ends the count early), which
// only affects progress.
func countStatements(s string) int {
	n := 0
	i := 0
	for {
		i = skipSpace(s, i)
		switch {
		case i >= len(s):
			return n
		case s[i] == ';':
			i++
			continue
		}
		if length, ok := matchShowTables(s[i:]); ok {
			i += length
		} else {
			i = statementEnd(s, i)
		}
		n++
	}
}

// statementEnd returns the index after the ';' that ends the statement
// starting at s[i], or len(s).
func statementEnd(s string, i int) int {
	trigger := isCreateTrigger(s, i)
	afterEnd := false // the last token other than space was the word END
	for {
		k, j := nextToken(s, i)
		switch k {
		case tokEnd:
			return j
		case tokSemi:
			if !trigger || afterEnd {
				return j
			}
			afterEnd = false
		case tokSpace:
		default:
			afterEnd = k == tokWord && strings.EqualFold(s[i:j], "end")
		}
		i = j
	}
}

// isCreateTrigger reports whether the statement starting at s[i] is
// [EXPLAIN [QUERY PLAN]] CREATE [TEMP | TEMPORARY] TRIGGER.
func isCreateTrigger(s string, i int) bool {
	seenCreate := false
	for range 6 {
		word, j := wordAt(s, skipSpace(s, i))
		i = j
		switch strings.ToLower(word) {
		case "explain", "query", "plan":
			if seenCreate {
				return false
			}
		case "create":
			seenCreate = true
		case "temp", "temporary":
			if !seenCreate {
				return false
			}
		case "trigger":
			return seenCreate
		default:
			return false
		}
	}
	return false
}

// pragmaHasArgument reports whether the first statement of text is a
// PRAGMA statement with an argument (PRAGMA name = value or PRAGMA
// name(value)). It returns true as well for any text it cannot read as a
// PRAGMA statement, so that callers deciding on access err toward denial.
func pragmaHasArgument(text string) bool {
	word, i := wordAt(text, skipSpace(text, 0))
	if !strings.EqualFold(word, "pragma") {
		return true
	}
	i, ok := skipName(text, skipSpace(text, i))
	if !ok {
		return true
	}
	i = skipSpace(text, i)
	if i < len(text) && text[i] == '.' {
		if i, ok = skipName(text, skipSpace(text, i+1)); !ok {
			return true
		}
		i = skipSpace(text, i)
	}
	k, _ := nextToken(text, i)
	return k != tokEnd && k != tokSemi
}

// skipName returns the index after the word or quoted identifier at s[i].
func skipName(s string, i int) (int, bool) {
	k, j := nextToken(s, i)
	return j, k == tokWord || k == tokQuoted || k == tokString
}

// maxLoggedStatement is the number of characters of a statement that the
// job log shows.
const maxLoggedStatement = 200

// shortenStatement returns text without leading comments, with each run of
// whitespace replaced by one space and cut to maxLoggedStatement
// characters, for the job log.
func shortenStatement(text string) string {
	text = strings.Join(strings.Fields(text[skipSpace(text, 0):]), " ")
	if utf8.RuneCountInString(text) <= maxLoggedStatement {
		return text
	}
	runes := []rune(text)
	return string(runes[:maxLoggedStatement]) + " ..."
}
