package store

import (
	"strings"
)

// stmtText is one statement of a query text, as split by splitStatements.
type stmtText struct {
	sql        string
	offset     int      // byte offset of sql in the whole text
	params     []string // named parameters, without prefix, first use first
	positional bool     // uses ? or ?NNN
	empty      bool     // only whitespace and comments
}

// splitStatements cuts SQL text into statements. It tokenizes just enough
// of SQLite's lexical rules (strings, quoted identifiers, comments,
// parameters) to find the semicolons that end statements; whether a
// semicolon ends one (and not, say, a statement inside CREATE TRIGGER) is
// decided by sqlite3_complete, SQLite's own answer.
func splitStatements(text string) []stmtText {
	var out []stmtText
	cur := stmtText{offset: 0, empty: true}
	seen := map[string]bool{}
	emit := func(end int) {
		cur.sql = text[cur.offset:end]
		out = append(out, cur)
		cur = stmtText{offset: end, empty: true}
		seen = map[string]bool{}
	}
	i := 0
	for i < len(text) {
		c := text[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			cur.empty = false
			i = skipQuoted(text, i, c)
		case c == '[':
			cur.empty = false
			if j := strings.IndexByte(text[i+1:], ']'); j >= 0 {
				i += j + 2
			} else {
				i = len(text)
			}
		case c == '-' && i+1 < len(text) && text[i+1] == '-':
			if j := strings.IndexByte(text[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(text)
			}
		case c == '/' && i+1 < len(text) && text[i+1] == '*':
			if j := strings.Index(text[i+2:], "*/"); j >= 0 {
				i += j + 4
			} else {
				i = len(text)
			}
		case c == '?':
			cur.empty, cur.positional = false, true
			i++
			for i < len(text) && isDigit(text[i]) {
				i++
			}
		case (c == ':' || c == '@' || c == '$') && i+1 < len(text) && isIdentChar(text[i+1]):
			cur.empty = false
			j := i + 1
			for j < len(text) && isIdentChar(text[j]) {
				j++
			}
			if name := text[i+1 : j]; !seen[name] {
				seen[name] = true
				cur.params = append(cur.params, name)
			}
			i = j
		case isIdentStart(c):
			cur.empty = false
			for i < len(text) && (isIdentChar(text[i]) || text[i] == '$') {
				i++
			}
		case c == ';':
			i++
			if cur.empty {
				cur.offset = i // a lone ';' is no statement
				continue
			}
			if sqliteComplete(text[cur.offset:i]) {
				emit(i)
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		default:
			cur.empty = false
			i++
		}
	}
	if !cur.empty {
		emit(len(text))
	}
	return out
}

// skipQuoted returns the index after the quoted token starting at i; a
// doubled quote inside is an escaped quote.
func skipQuoted(text string, i int, q byte) int {
	for j := i + 1; j < len(text); j++ {
		if text[j] == q {
			if j+1 < len(text) && text[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(text)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }

// lineCol returns the 1-based line and column (in characters) of a byte
// offset.
func lineCol(text string, offset int) (line, col int) {
	offset = min(max(offset, 0), len(text))
	before := text[:offset]
	line = strings.Count(before, "\n") + 1
	if k := strings.LastIndexByte(before, '\n'); k >= 0 {
		before = before[k+1:]
	}
	return line, len([]rune(before)) + 1
}
