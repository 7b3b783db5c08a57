// Reference WebSocket echo server: gorilla/websocket's classic /echo handler (Upgrade, then loop
// ReadMessage -> WriteMessage), no per-message logging. Binds 127.0.0.1, prints its readiness line
// as one JSON object (the same shape as netlab's) and serves until killed.
//
//	go-ws-echo [-port N]   (0 = ephemeral)
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{CheckOrigin: func(r *http.Request) bool { return true }}

func echo(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		mt, message, err := c.ReadMessage()
		if err != nil {
			break
		}
		if err := c.WriteMessage(mt, message); err != nil {
			break
		}
	}
}

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0 = ephemeral)")
	flag.Parse()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-ws-echo:", err)
		os.Exit(3)
	}
	fmt.Printf("{\"event\":\"listening\",\"proto\":\"ws\",\"address\":\"127.0.0.1\",\"port\":%d}\n",
		ln.Addr().(*net.TCPAddr).Port)
	http.HandleFunc("/echo", echo)
	if err := http.Serve(ln, nil); err != nil {
		fmt.Fprintln(os.Stderr, "go-ws-echo:", err)
		os.Exit(1)
	}
}
