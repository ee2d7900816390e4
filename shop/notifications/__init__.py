"""The shop's own notifications (站内消息): written in the transaction of the change
they tell of, read and marked read by their recipient."""
