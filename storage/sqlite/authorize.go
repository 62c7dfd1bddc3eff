package sqlite

import (
	"fmt"
	"strings"

	"modernc.org/sqlite"
	lib "modernc.org/sqlite/lib"

	"github.com/opendo/opendo/storage"
)

// Reserved name prefixes: the runtime's own tables. User SQL can neither
// create objects with these names nor read or write them.
var reservedPrefixes = []string{"_cf_", "_opendo_"}

// reserved reports whether name starts with a reserved prefix (ASCII
// case-insensitively).
func reserved(name string) bool {
	for _, p := range reservedPrefixes {
		if len(name) >= len(p) && strings.EqualFold(name[:len(p)], p) {
			return true
		}
	}
	return false
}

// shadowsBuiltin reports whether a table or view of this name would hide a
// table-valued function that the runtime's own statements use (json_each
// for multi-key calls, pragma_* for DatabaseSize and ContentHash): SQLite
// resolves a real table first.
func shadowsBuiltin(name string) bool {
	n := strings.ToLower(name)
	return n == "json_each" || n == "json_tree" || strings.HasPrefix(n, "pragma_")
}

// internalTable reports the virtual tables that expose raw pages of the
// file, around the authorizer's table checks.
func internalTable(name string) bool {
	return strings.EqualFold(name, "sqlite_dbpage") || strings.EqualFold(name, "dbstat")
}

// authState is what the authorizer saw while a user statement was prepared
// (and run: pragma table-valued functions prepare statements as they run).
type authState struct {
	user      bool  // enforce the user SQL policy (off for the runtime's statements and replay)
	denied    error // the first denial, wrapping ErrForbiddenSQL or ErrReservedName
	dml       bool  // top-level INSERT, UPDATE or DELETE on a user table
	ddl       bool  // CREATE, DROP or ALTER
	pragmaSet bool  // a PRAGMA that sets a value that must be journaled (user SQL only)
	alter     bool  // ALTER TABLE (its RENAME TO target is checked separately)
}

func (a *authState) reset(user bool) { *a = authState{user: user} }

func (a *authState) deny(sentinel error, format string, args ...any) sqlite.AuthorizerReturnCode {
	if a.denied == nil {
		a.denied = fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
	}
	return sqlite.AuthorizerDeny
}

func (a *authState) denyReserved(what, name string) sqlite.AuthorizerReturnCode {
	return a.deny(storage.ErrReservedName, "%s %q: names starting with %q or %q belong to the runtime", what, name, reservedPrefixes[0], reservedPrefixes[1])
}

const (
	msgTxn = "transaction control (BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE) is not allowed: " +
		"each request already runs in one transaction; use Storage().Transaction for a group of writes that can roll back"
	msgAttach = "ATTACH and DETACH are not allowed: an object has exactly one database"
	msgTemp   = "TEMP tables, views, indexes and triggers are not allowed: they are not journaled; create regular ones"
)

// authorize is the connection's authorizer. It notes what a statement
// does for every statement, and enforces the user SQL policy only for user
// SQL (not for the runtime's own statements or replay).
func (a *authState) authorize(action sqlite.AuthorizerActionCode, arg1, arg2, dbName, trigger string) sqlite.AuthorizerReturnCode {
	createDrop := false
	switch action {
	case sqlite.AuthCreateTable, sqlite.AuthCreateView, sqlite.AuthDropTable, sqlite.AuthDropView,
		sqlite.AuthCreateIndex, sqlite.AuthCreateTrigger, sqlite.AuthDropIndex, sqlite.AuthDropTrigger,
		sqlite.AuthCreateVTable, sqlite.AuthDropVTable:
		a.ddl, createDrop = true, true
	case sqlite.AuthAlterTable:
		a.ddl, a.alter = true, true
	case sqlite.AuthInsert, sqlite.AuthUpdate, sqlite.AuthDelete:
		if trigger == "" && !strings.HasPrefix(strings.ToLower(arg1), "sqlite_") {
			a.dml = true
		}
	}
	if !a.user {
		return sqlite.AuthorizerOK
	}
	if createDrop && strings.EqualFold(dbName, "temp") {
		return a.deny(storage.ErrForbiddenSQL, msgTemp) // CREATE TABLE temp.x is not reported as a TEMP action
	}
	switch action {
	case sqlite.AuthTransaction, sqlite.AuthSavepoint:
		return a.deny(storage.ErrForbiddenSQL, msgTxn)
	case sqlite.AuthAttach, sqlite.AuthDetach:
		return a.deny(storage.ErrForbiddenSQL, msgAttach)
	case sqlite.AuthCreateTempTable, sqlite.AuthCreateTempIndex, sqlite.AuthCreateTempTrigger, sqlite.AuthCreateTempView,
		sqlite.AuthDropTempTable, sqlite.AuthDropTempIndex, sqlite.AuthDropTempTrigger, sqlite.AuthDropTempView:
		return a.deny(storage.ErrForbiddenSQL, msgTemp)
	case sqlite.AuthCreateTable, sqlite.AuthCreateView, sqlite.AuthDropTable, sqlite.AuthDropView:
		if reserved(arg1) {
			return a.denyReserved("table or view", arg1)
		}
		if shadowsBuiltin(arg1) {
			return a.deny(storage.ErrReservedName, "table or view %q would hide the built-in table-valued function the runtime uses", arg1)
		}
	case sqlite.AuthCreateIndex, sqlite.AuthCreateTrigger, sqlite.AuthDropIndex, sqlite.AuthDropTrigger:
		if reserved(arg1) {
			return a.denyReserved("index or trigger", arg1)
		}
		if reserved(arg2) {
			return a.denyReserved("table", arg2)
		}
	case sqlite.AuthCreateVTable, sqlite.AuthDropVTable:
		if reserved(arg1) {
			return a.denyReserved("virtual table", arg1)
		}
		if shadowsBuiltin(arg1) {
			return a.deny(storage.ErrReservedName, "virtual table %q would hide the built-in table-valued function the runtime uses", arg1)
		}
		if internalTable(arg2) {
			return a.deny(storage.ErrForbiddenSQL, "virtual table module %s is not allowed", arg2)
		}
	case sqlite.AuthAlterTable:
		if reserved(arg2) {
			return a.denyReserved("table", arg2)
		}
	case sqlite.AuthInsert, sqlite.AuthUpdate, sqlite.AuthDelete, sqlite.AuthRead:
		if reserved(arg1) {
			return a.denyReserved("table", arg1)
		}
		if internalTable(arg1) {
			return a.deny(storage.ErrForbiddenSQL, "%s is not allowed: it exposes the file's raw pages", arg1)
		}
	case sqlite.AuthAnalyze:
		if reserved(arg1) {
			return sqlite.AuthorizerIgnore // ANALYZE without a name skips the runtime's tables
		}
	case sqlite.AuthPragma:
		return a.pragma(arg1, arg2)
	case sqlite.AuthFunction:
		if strings.EqualFold(arg2, "load_extension") {
			return a.deny(storage.ErrForbiddenSQL, "load_extension() is not allowed")
		}
	}
	return sqlite.AuthorizerOK
}

// pragmaRule says what user SQL may do with a PRAGMA.
type pragmaRule uint8

const (
	pragmaInspect  pragmaRule = iota + 1 // read-only; an argument names a table, index or limit
	pragmaReadOnly                       // may be read, not set
	pragmaIgnored                        // may be set, which has no effect inside a transaction
	pragmaJournal                        // may be set; the setting is journaled and replayed
)

var pragmaRules = map[string]pragmaRule{
	"table_info": pragmaInspect, "table_xinfo": pragmaInspect, "table_list": pragmaInspect,
	"index_list": pragmaInspect, "index_info": pragmaInspect, "index_xinfo": pragmaInspect,
	"foreign_key_list": pragmaInspect, "foreign_key_check": pragmaInspect,
	"quick_check": pragmaInspect, "integrity_check": pragmaInspect,
	"collation_list": pragmaInspect, "function_list": pragmaInspect, "module_list": pragmaInspect,
	"pragma_list": pragmaInspect, "compile_options": pragmaInspect,

	"page_count": pragmaReadOnly, "page_size": pragmaReadOnly, "freelist_count": pragmaReadOnly,
	"encoding": pragmaReadOnly, "schema_version": pragmaReadOnly, "data_version": pragmaReadOnly,
	"application_id": pragmaReadOnly, "max_page_count": pragmaReadOnly, "auto_vacuum": pragmaReadOnly,

	"foreign_keys":       pragmaIgnored,
	"defer_foreign_keys": pragmaJournal,
	"user_version":       pragmaJournal,
}

func (a *authState) pragma(name, arg string) sqlite.AuthorizerReturnCode {
	rule := pragmaRules[strings.ToLower(name)]
	switch {
	case rule == 0:
		return a.deny(storage.ErrForbiddenSQL, "PRAGMA %s is not allowed: the runtime manages the connection, journaling and durability "+
			"(allowed: introspection such as table_info, index_list, foreign_key_check; foreign_keys, defer_foreign_keys, user_version)", name)
	case rule == pragmaInspect && reserved(arg):
		return a.denyReserved("table", arg)
	case rule == pragmaReadOnly && arg != "":
		return a.deny(storage.ErrForbiddenSQL, "PRAGMA %s can be read but not set", name)
	case rule == pragmaJournal && arg != "":
		a.pragmaSet = true
	}
	return sqlite.AuthorizerOK
}

// renameTarget returns the new name of an ALTER TABLE ... RENAME TO
// statement (unquoted), or ok=false for any other ALTER TABLE.
func renameTarget(stmt string) (name string, ok bool) {
	toks := tokens(stmt, 8)
	// ALTER TABLE [schema .] table RENAME TO name
	i := 3
	if len(toks) > 4 && toks[3] == "." {
		i = 5
	}
	if len(toks) < i+3 || !strings.EqualFold(toks[i], "RENAME") || !strings.EqualFold(toks[i+1], "TO") {
		return "", false
	}
	return unquote(toks[i+2]), true
}

// tokens splits the start of a SQL statement into at most max tokens,
// skipping white space and comments.
func tokens(s string, max int) []string {
	var out []string
	eachToken(s, func(t string) bool {
		out = append(out, t)
		return len(out) < max
	})
	return out
}

// eachToken calls fn with the tokens of s until fn returns false. White
// space and comments are skipped; quoted identifiers and strings are single
// tokens; any other character that is not part of a word is a token.
func eachToken(s string, fn func(string) bool) {
	for {
		s = skipTrivia(s, false)
		if s == "" {
			return
		}
		n := 1
		switch c := s[0]; {
		case c == '"' || c == '`' || c == '\'' || c == '[':
			end := c
			if c == '[' {
				end = ']'
			}
			for n < len(s) {
				if s[n] == end {
					if end != ']' && n+1 < len(s) && s[n+1] == end {
						n += 2
						continue
					}
					n++
					break
				}
				n++
			}
		case wordByte(c):
			for n < len(s) && wordByte(s[n]) {
				n++
			}
		}
		if !fn(s[:n]) {
			return
		}
		s = s[n:]
	}
}

// unjournaledConflict finds a conflict resolution that a journal cannot
// reproduce: FAIL keeps part of a failed statement's changes (the
// statement is not journaled), ROLLBACK ends the request's transaction. It
// returns the offending phrase, or "".
func unjournaledConflict(stmt string) string {
	var prev [2]string
	found := ""
	eachToken(stmt, func(t string) bool {
		if strings.EqualFold(t, "FAIL") || strings.EqualFold(t, "ROLLBACK") {
			switch {
			case strings.EqualFold(prev[1], "OR"), strings.EqualFold(prev[1], "CONFLICT"):
				found = prev[1] + " " + t
			case prev[1] == "(" && strings.EqualFold(prev[0], "RAISE"):
				found = "RAISE(" + t
			}
		}
		prev[0], prev[1] = prev[1], t
		return found == ""
	})
	return strings.ToUpper(found)
}

func wordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// unquote removes SQL identifier quotes ("x", `x`, [x], 'x').
func unquote(t string) string {
	if len(t) >= 2 {
		switch q := t[0]; q {
		case '"', '`', '\'':
			if t[len(t)-1] == q {
				return strings.ReplaceAll(t[1:len(t)-1], string([]byte{q, q}), string(q))
			}
		case '[':
			if t[len(t)-1] == ']' {
				return t[1 : len(t)-1]
			}
		}
	}
	return t
}

// skipTrivia skips white space and comments, and with semicolons also ";".
func skipTrivia(s string, semicolons bool) string {
	for len(s) > 0 {
		switch {
		case s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' || s[0] == '\f':
			s = s[1:]
		case semicolons && s[0] == ';':
			s = s[1:]
		case strings.HasPrefix(s, "--"):
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				return ""
			}
			s = s[i+1:]
		case strings.HasPrefix(s, "/*"):
			i := strings.Index(s[2:], "*/")
			if i < 0 {
				return ""
			}
			s = s[i+4:]
		default:
			return s
		}
	}
	return s
}

// onlyTrivia reports whether s holds no statement: only white space,
// comments and semicolons.
func onlyTrivia(s string) bool { return skipTrivia(s, true) == "" }

// classify turns a failed prepare or step into an error wrapping a storage
// sentinel (or ErrCorrupt when SQLite found the file damaged), with
// SQLite's message.
func (db *DB) classify(rc int32) error {
	if db.auth.denied != nil {
		return db.auth.denied
	}
	msg := db.raw.errmsg()
	detail := fmt.Sprintf("%s (%s)", msg, codeName(rc))
	switch {
	case rc&0xff == lib.SQLITE_TOOBIG,
		strings.Contains(msg, "too many SQL variables"),
		strings.HasPrefix(msg, "variable number must be between"),
		strings.HasPrefix(msg, "too many columns"),
		strings.Contains(msg, "LIKE or GLOB pattern too complex"),
		strings.HasPrefix(msg, "too many arguments on function"):
		return fmt.Errorf("%w: %s", storage.ErrLimitExceeded, detail)
	case strings.HasPrefix(msg, "cannot VACUUM"):
		return fmt.Errorf("%w: VACUUM is not allowed: the runtime compacts files itself (%s)", storage.ErrForbiddenSQL, detail)
	case rc&0xff == lib.SQLITE_AUTH:
		return fmt.Errorf("%w: %s", storage.ErrForbiddenSQL, detail)
	case rc&0xff == lib.SQLITE_INTERRUPT && db.sql.ctx != nil && db.sql.ctx.Err() != nil:
		return fmt.Errorf("sqlite: statement interrupted: %w", db.sql.ctx.Err())
	case corruptRC(rc):
		return fmt.Errorf("%w: %s", ErrCorrupt, detail)
	}
	return fmt.Errorf("%w: %s", storage.ErrSQL, detail)
}

// fatal reports SQLite errors after which the request's state is unknown.
func fatal(rc int32) bool {
	switch rc & 0xff {
	case lib.SQLITE_NOMEM, lib.SQLITE_IOERR, lib.SQLITE_CORRUPT, lib.SQLITE_NOTADB, lib.SQLITE_CANTOPEN, lib.SQLITE_INTERNAL, lib.SQLITE_MISUSE:
		return true
	}
	return false
}
