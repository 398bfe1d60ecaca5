// Command pubsub-emulator serves Google's in-memory Pub/Sub fake (pstest) over gRPC,
// so the unmodified @google-cloud/pubsub client reaches it through PUBSUB_EMULATOR_HOST.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"cloud.google.com/go/pubsub/v2/pstest"
)

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 8085, "port to listen on (0 picks a free one)")
	flag.Parse()

	srv := pstest.NewServerWithAddress(fmt.Sprintf("%s:%d", *host, *port))
	// One JSON line on stdout tells a supervisor where we listen; it waits for this line.
	line, _ := json.Marshal(map[string]string{"severity": "INFO", "message": "pubsub emulator listening", "address": srv.Addr})
	fmt.Println(string(line))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	_ = srv.Close()
}
