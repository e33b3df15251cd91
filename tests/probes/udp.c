/* UDP for tests (busybox's nc has none):
 *   udp listen PORT        print the first datagram received, answer "echo-" + it
 *   udp ask IP PORT MSG    send MSG, print the answer (or nothing after 3 s)  */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

int main(int argc, char **argv) {
    char buf[512], reply[600];
    struct sockaddr_in peer = { .sin_family = AF_INET };
    socklen_t len = sizeof peer;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (argc == 3 && !strcmp(argv[1], "listen")) {
        struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
        if (bind(s, (struct sockaddr *)&me, sizeof me) < 0) { perror("bind"); return 1; }
        printf("listening\n"); fflush(stdout);
        ssize_t n = recvfrom(s, buf, sizeof buf - 1, 0, (struct sockaddr *)&peer, &len);
        if (n < 0) { perror("recvfrom"); return 1; }
        buf[n] = 0;
        snprintf(reply, sizeof reply, "echo-%s", buf);
        sendto(s, reply, strlen(reply), 0, (struct sockaddr *)&peer, len);
        printf("got-%s\n", buf);
        return 0;
    }
    if (argc == 5 && !strcmp(argv[1], "ask")) {
        peer.sin_port = htons(atoi(argv[3]));
        inet_pton(AF_INET, argv[2], &peer.sin_addr);
        struct timeval tv = { .tv_sec = 3 };
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sendto(s, argv[4], strlen(argv[4]), 0, (struct sockaddr *)&peer, sizeof peer);
        ssize_t n = recv(s, buf, sizeof buf - 1, 0);
        if (n > 0) { buf[n] = 0; printf("%s\n", buf); }
        return 0;
    }
    fprintf(stderr, "usage: udp listen PORT | udp ask IP PORT MSG\n");
    return 2;
}
