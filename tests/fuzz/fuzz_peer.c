/*
 * tests/fuzz/fuzz_peer.c: bytes received on a peer connection through
 * peer_frame_parse() (consensus/peer.c), frame after frame as in_frames()
 * takes them. Byte 0 says whether the channel has a key. A frame that
 * parses must lie inside the bytes, and lay out again to the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "consensus/peer.h"
#include "tests/fuzz/fuzz.h"

static const uint8_t key[16] = "xsr-fuzz-peer-k!";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *k;
	struct peer_frame f;
	size_t off = 1;
	int rc;

	if (size < 1)
		return 0;
	k = data[0] & 1 ? key : NULL;
	while ((rc = peer_frame_parse(k, data + off, size - off, &f)) == 1) {
		uint8_t *again;

		if (f.size > size - off || f.size != PEER_FRAME_HDR + f.len ||
		    f.body != data + off + PEER_FRAME_HDR)
			abort();
		again = malloc(f.size);
		if (!again)
			abort();
		peer_frame_put(k, f.from, f.counter, f.body, f.len, again);
		/* unkeyed frames carry any MAC: compare the rest */
		if (memcmp(again, data + off, 20) != 0 ||
		    (k && memcmp(again + 20, data + off + 20, 16) != 0) ||
		    memcmp(again + PEER_FRAME_HDR, f.body, f.len) != 0)
			abort();
		free(again);
		off += f.size;
	}
	return 0;
}
