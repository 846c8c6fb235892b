set terminal pngcairo size 900,560 noenhanced font ',11'
set output "history.png"
set title "History page and unread count vs messages in the chat"
set xlabel "messages in the chat"
set ylabel "ms per request (median)"
set logscale x
set grid
set key top left
set format x '%.0s%c'
set logscale y
x1 = 1000000.0; y1 = 0.2489
plot "history.dat" using 1:2 with linespoints lw 2 pt 7 title "GET messages?limit=50, newest page", \
     "history.dat" using 1:4 with linespoints lw 2 pt 7 title "GET messages?limit=50, middle page", \
     "history.dat" using 1:6 with linespoints lw 2 pt 7 title "GET /api/chat/<id>, all unread", \
     "history.dat" using 1:8 with linespoints lw 2 pt 7 title "GET /api/chat/<id>, all read", \
     y1 * x / x1 with lines dt 2 lc rgb 'gray' title 'linear (slope 1)'
