/*
 * tests/layer_check.c: the empty program of xsr_layer_check()
 * (CMakeLists.txt). Linked with one library's whole archive and the
 * libraries it names, it builds only if that library calls nothing of a
 * layer above it.
 */
int main(void)
{
	return 0;
}
