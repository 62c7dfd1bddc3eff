package sqlite

import (
	"database/sql/driver"
	"testing"
)

type foreignConn struct{ driver.Conn }

func TestRawConnOf(t *testing.T) {
	db := openTest(t)
	raw, err := rawConnOf(db.conn)
	if err != nil || raw != db.raw || raw.db == 0 || raw.tls == nil {
		t.Fatalf("rawConnOf(modernc connection) = %v, %v", raw, err)
	}
	if _, err := rawConnOf(&foreignConn{}); err == nil {
		t.Error("rawConnOf accepted another driver's connection")
	}
}
