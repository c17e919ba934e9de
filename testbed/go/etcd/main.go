// Command etcd is the etcd server, built by testbed/build.sh for the Kirana
// testbed. All behaviour lives in go.etcd.io/etcd/server/v3/etcdmain.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
