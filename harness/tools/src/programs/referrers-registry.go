// A registry with the OCI 1.1 referrers API, for tests: go-containerregistry's
// registry with WithReferrersSupport(true), in memory, on --address.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	address := flag.String("address", "127.0.0.1:0", "host:port to listen on")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *version {
		v := "unknown"
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, dep := range info.Deps {
				if dep.Path == "github.com/google/go-containerregistry" {
					v = dep.Version
				}
			}
		}
		fmt.Printf("referrers-registry go-containerregistry %s\n", v)
		os.Exit(0)
	}
	listener, err := net.Listen("tcp", *address)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", listener.Addr())
	server := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler:           withLocation(registry.New(registry.WithReferrersSupport(true))),
	}
	log.Fatal(server.Serve(listener))
}

// withLocation adds the Location header the distribution spec requires on
// a completed blob upload or manifest put (201), which go-containerregistry's
// registry leaves out and clients such as oci-client insist on.
func withLocation(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			location := r.URL.Path
			if at := strings.Index(location, "/blobs/uploads/"); at > 0 {
				location = location[:at] + "/blobs/" + r.URL.Query().Get("digest")
			}
			w = &locationWriter{ResponseWriter: w, location: location}
		}
		next.ServeHTTP(w, r)
	})
}

type locationWriter struct {
	http.ResponseWriter
	location string
}

func (w *locationWriter) WriteHeader(code int) {
	if code == http.StatusCreated && w.Header().Get("Location") == "" {
		w.Header().Set("Location", w.location)
	}
	w.ResponseWriter.WriteHeader(code)
}
