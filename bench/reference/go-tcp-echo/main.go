// Reference TCP echo server: one goroutine per connection, io.Copy(conn, conn) (the idiomatic Go
// echo; Go sets TCP_NODELAY by default). Binds 127.0.0.1, prints its readiness line as JSON.
//
//	go-tcp-echo [-port N]
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0 = ephemeral)")
	flag.Parse()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-tcp-echo:", err)
		os.Exit(3)
	}
	fmt.Printf("{\"event\":\"listening\",\"proto\":\"tcp\",\"address\":\"127.0.0.1\",\"port\":%d}\n",
		ln.Addr().(*net.TCPAddr).Port)
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			io.Copy(c, c)
		}(c)
	}
}
