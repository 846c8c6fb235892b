set terminal pngcairo size 900,560 noenhanced font ',11'
set output "chats.png"
set title "Chat list (GET /api/chat, with unread counts) vs chats of the user"
set xlabel "chats of the user"
set ylabel "ms per request (median)"
set logscale x
set grid
set key top left
set format x '%.0s%c'
set logscale y
x1 = 1000.0; y1 = 40.37
plot "chats.dat" using 1:2 with linespoints lw 2 pt 7 title "GET /api/chat, p50", \
     "chats.dat" using 1:3 with linespoints lw 2 pt 7 title "p90", \
     y1 * x / x1 with lines dt 2 lc rgb 'gray' title 'linear (slope 1)'
