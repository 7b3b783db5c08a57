// Reference UDP echo/ack server in the classic lesson's style: ReadFrom in a loop, a goroutine per
// datagram that answers with WriteTo. -mode echo (default, what the load generator verifies) sends
// the datagram back; -mode ack answers "server received: <msg>" like the lesson.
//
//	go-udp-echo [-port N] [-mode echo|ack]
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
)

func main() {
	port := flag.Int("port", 0, "UDP port on 127.0.0.1 (0 = ephemeral)")
	mode := flag.String("mode", "echo", "echo or ack")
	flag.Parse()
	pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-udp-echo:", err)
		os.Exit(3)
	}
	fmt.Printf("{\"event\":\"listening\",\"proto\":\"udp\",\"address\":\"127.0.0.1\",\"port\":%d}\n",
		pc.LocalAddr().(*net.UDPAddr).Port)
	ack := *mode == "ack"
	for {
		buf := make([]byte, 65536)
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			continue
		}
		go func(msg []byte, addr net.Addr) {
			if ack {
				msg = append([]byte("server received: "), msg...)
			}
			pc.WriteTo(msg, addr)
		}(buf[:n], addr)
	}
}
