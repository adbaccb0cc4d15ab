// Command etcd is the etcd server of go.etcd.io/etcd/server/v3, built from the version
// pinned in go.mod (the etcd release binary's main does the same).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
