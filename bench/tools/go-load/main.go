// go-load: an independent closed-loop echo load client for bench/bench.py (issue 17), so that
// netlab's servers are not only measured by netlab's own load mode. Built offline against Debian's
// gocode tree (GOPATH=/usr/share/gocode GO111MODULE=off, golang-github-gorilla-websocket-dev).
//
//	go-load -proto ws  -target ws://127.0.0.1:PORT/echo -c 100 -size 64 -d 3
//	go-load -proto tcp -target 127.0.0.1:PORT           -c 10  -size 16384 -count 200000
//
// C connections are opened first (all of them, before any message is timed). Then each keeps
// `pipeline` messages of SIZE bytes in flight (default 1: send, wait for the whole echo, repeat;
// binary messages, compression off) until D seconds have passed or COUNT messages were echoed.
// Every echo is checked (length; and content, for the first message of each connection).
//
// stdout, one JSON object per line:
//
//	{"event":"window","phase":"start"}  when every connection is open and the timed window begins
//	{"event":"window","phase":"end"}    when the window ends (deadline or count reached)
//	{"event":"load", ...}               the result, same field names as netlab's load mode
//
// The harness samples the server's CPU time at the two window lines, so CPU per message covers the
// timed messages only (no handshakes). Exit 0 when there were no errors, 1 otherwise, 2 on usage.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

type conn interface {
	send(p []byte) error
	recv(buf []byte) (int, error) // reads one whole echoed message into buf
	deadline(t time.Time)         // makes a blocked send or recv return after t
	close()
}

type tcpConn struct{ c net.Conn }

func (t *tcpConn) send(p []byte) error { _, err := t.c.Write(p); return err }
func (t *tcpConn) recv(buf []byte) (int, error) {
	return io.ReadFull(t.c, buf)
}
func (t *tcpConn) deadline(d time.Time) { t.c.SetDeadline(d) }
func (t *tcpConn) close()               { t.c.Close() }

type wsConn struct{ c *websocket.Conn }

func (w *wsConn) send(p []byte) error { return w.c.WriteMessage(websocket.BinaryMessage, p) }
func (w *wsConn) recv(buf []byte) (int, error) {
	_, r, err := w.c.NextReader()
	if err != nil {
		return 0, err
	}
	n, err := io.ReadFull(r, buf)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return n, fmt.Errorf("short echo: %d of %d bytes", n, len(buf))
	}
	if err != nil {
		return n, err
	}
	var one [1]byte
	if m, _ := r.Read(one[:]); m != 0 {
		return n, fmt.Errorf("echo longer than %d bytes", len(buf))
	}
	return n, nil
}
func (w *wsConn) deadline(d time.Time) { w.c.UnderlyingConn().SetDeadline(d) }
func (w *wsConn) close() {
	_ = w.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(time.Second))
	w.c.Close()
}

func dial(proto, target string, size int) (conn, error) {
	switch proto {
	case "tcp":
		c, err := net.DialTimeout("tcp", target, 10*time.Second)
		if err != nil {
			return nil, err
		}
		c.(*net.TCPConn).SetNoDelay(true) // Go's default, stated: one small message must not wait
		return &tcpConn{c}, nil
	case "ws":
		buf := size + 14
		if buf < 4096 {
			buf = 4096
		}
		if buf > 65536 {
			buf = 65536
		}
		d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: buf, WriteBufferSize: buf,
			EnableCompression: false}
		c, _, err := d.Dial(target, nil)
		if err != nil {
			return nil, err
		}
		c.SetReadLimit(int64(size) + 1)
		return &wsConn{c}, nil
	}
	return nil, fmt.Errorf("unknown proto %q", proto)
}

func emit(v interface{}) {
	b, _ := json.Marshal(v)
	os.Stdout.Write(append(b, '\n'))
}

func pct(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return float64(sorted[i]) / 1000.0
}

func main() {
	proto := flag.String("proto", "ws", "ws or tcp")
	target := flag.String("target", "", "ws://HOST:PORT/PATH (ws) or HOST:PORT (tcp)")
	conns := flag.Int("c", 100, "connections")
	size := flag.Int("size", 64, "message size in bytes")
	secs := flag.Float64("d", 3, "seconds of timed load (ignored when -count is set)")
	count := flag.Int64("count", 0, "stop after this many echoed messages (0 = run for -d seconds)")
	pipeline := flag.Int("pipeline", 1, "messages in flight per connection")
	flag.Parse()
	if *target == "" || *conns < 1 || *size < 1 || *pipeline < 1 || (*proto != "ws" && *proto != "tcp") {
		fmt.Fprintln(os.Stderr, "go-load: usage: go-load -proto ws|tcp -target T [-c N] [-size B] [-d S | -count N] [-pipeline K]")
		os.Exit(2)
	}

	// Connect every connection first, 64 at a time.
	cs := make([]conn, *conns)
	var connectErrors int64
	var firstErr atomic.Value
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dial(*proto, *target, *size)
			if err != nil {
				atomic.AddInt64(&connectErrors, 1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			cs[i] = c
		}(i)
	}
	wg.Wait()

	var stop int32
	var done int64 // messages echoed in the window, for -count
	var errorsN int64
	var stalled int64 // connections still waiting for an echo 5 s after the window
	lat := make([][]int64, *conns)
	msgs := make([]int64, *conns)
	start := time.Now()
	emit(map[string]string{"event": "window", "phase": "start"})
	var deadline time.Time
	if *count == 0 {
		deadline = start.Add(time.Duration(*secs * float64(time.Second)))
	} else {
		deadline = start.Add(10 * time.Minute) // a bound on a -count run
	}
	// A connection whose echo never comes (a stalled server) must not hold the run forever: 5 s
	// after the window its socket gets a deadline, and it counts as stalled.
	const grace = 5 * time.Second
	var unstick *time.Timer
	var unstickOnce sync.Once
	armUnstick := func() {
		unstickOnce.Do(func() {
			unstick = time.AfterFunc(grace, func() {
				for _, c := range cs {
					if c != nil {
						c.deadline(time.Now())
					}
				}
			})
		})
	}
	var endOnce sync.Once
	var end time.Time
	finish := func() {
		endOnce.Do(func() {
			end = time.Now()
			atomic.StoreInt32(&stop, 1)
			emit(map[string]string{"event": "window", "phase": "end"})
			armUnstick()
		})
	}
	timer := time.AfterFunc(time.Until(deadline), finish)

	for i, c := range cs {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func(i int, c conn) {
			defer wg.Done()
			payload := make([]byte, *size)
			for j := range payload {
				payload[j] = byte('a' + (i+j)%26)
			}
			in := make([]byte, *size)
			sent := make([]time.Time, *pipeline)
			l := make([]int64, 0, 4096)
			first := true
			for atomic.LoadInt32(&stop) == 0 {
				for k := 0; k < *pipeline; k++ {
					sent[k] = time.Now()
					if err := c.send(payload); err != nil {
						if ne, ok := err.(net.Error); ok && ne.Timeout() && atomic.LoadInt32(&stop) != 0 {
							atomic.AddInt64(&stalled, 1)
							return
						}
						atomic.AddInt64(&errorsN, 1)
						firstErr.CompareAndSwap(nil, "send: "+err.Error())
						return
					}
				}
				for k := 0; k < *pipeline; k++ {
					if _, err := c.recv(in); err != nil {
						if atomic.LoadInt32(&stop) != 0 {
							if ne, ok := err.(net.Error); ok && ne.Timeout() {
								atomic.AddInt64(&stalled, 1)
								firstErr.CompareAndSwap(nil, fmt.Sprintf("no echo within %v after the window", grace))
								return
							}
						}
						atomic.AddInt64(&errorsN, 1)
						firstErr.CompareAndSwap(nil, "receive: "+err.Error())
						return
					}
					now := time.Now()
					if first {
						first = false
						if !bytes.Equal(in, payload) {
							atomic.AddInt64(&errorsN, 1)
							firstErr.CompareAndSwap(nil, "echo differs from what was sent")
							return
						}
					}
					if atomic.LoadInt32(&stop) != 0 {
						break // completed after the window: not counted
					}
					l = append(l, now.Sub(sent[k]).Nanoseconds())
					msgs[i]++
					if *count > 0 && atomic.AddInt64(&done, 1) >= *count {
						finish()
					}
				}
			}
			lat[i] = l
		}(i, c)
	}
	wg.Wait()
	timer.Stop()
	finish()
	unstickOnce.Do(func() {})
	if unstick != nil {
		unstick.Stop()
	}
	for _, c := range cs {
		if c != nil {
			c.close()
		}
	}

	var all []int64
	var total int64
	for i := range lat {
		all = append(all, lat[i]...)
		total += msgs[i]
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	elapsed := end.Sub(start).Seconds()
	var mean float64
	for _, v := range all {
		mean += float64(v)
	}
	if len(all) > 0 {
		mean /= float64(len(all)) * 1000
	}
	res := map[string]interface{}{
		"event": "load", "client": "go-load", "proto": *proto, "connections": *conns, "size": *size,
		"pipeline": *pipeline, "messages": total, "bytes": total * int64(*size), "errors": errorsN + stalled,
		"stalled":        stalled,
		"connect_errors": connectErrors, "seconds": elapsed,
		"msgs_per_s": float64(total) / elapsed, "mb_per_s": float64(total) * float64(*size) / elapsed / 1e6,
		"latency_us": map[string]float64{"min": pct(all, 0), "mean": mean, "p50": pct(all, 0.5),
			"p90": pct(all, 0.9), "p99": pct(all, 0.99), "p99_9": pct(all, 0.999), "max": pct(all, 1)},
	}
	if e := firstErr.Load(); e != nil {
		res["first_error"] = e
	}
	emit(res)
	if errorsN+connectErrors > 0 {
		os.Exit(1)
	}
}
