/*
 * tests/fuzz/fuzz_peer.c: bytes received on a peer connection through
 * peer_frame_parse() (consensus/peer.c), frame after frame as in_frames()
 * takes them (inside TLS: what an authenticated member, or a test's
 * insecure one, may send). A frame that parses must lie inside the bytes,
 * and lay out again to the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "consensus/peer.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct peer_frame f;
	size_t off = 0;
	int rc;

	while ((rc = peer_frame_parse(data + off, size - off, &f)) == 1) {
		uint8_t *again;

		if (f.size > size - off || f.size != PEER_FRAME_HDR + f.len ||
		    f.body != data + off + PEER_FRAME_HDR)
			abort();
		again = malloc(f.size);
		if (!again)
			abort();
		peer_frame_put(f.from, f.body, f.len, again);
		if (memcmp(again, data + off, f.size) != 0)
			abort();
		free(again);
		off += f.size;
	}
	return 0;
}
